#!/usr/bin/env python3
"""Generates openapi_v3_api_v1.json (next to this file): the OpenAPI v3 document of the core
group (api/v1) for what the simulated cluster serves, shaped like kube-apiserver 1.32's.
Run: python3 src/sim/openapi_v3_api_v1.gen.py > src/sim/openapi_v3_api_v1.json"""
import json
import sys

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def ref_default(name, desc=None):
    s = {"allOf": [ref(name)], "default": {}}
    if desc:
        s["description"] = desc
    return s


def s(desc=None, **kw):
    out = {"type": "string"}
    if desc:
        out["description"] = desc
    out.update(kw)
    return out


def i32(desc=None):
    out = {"type": "integer", "format": "int32"}
    if desc:
        out["description"] = desc
    return out


def i64(desc=None):
    out = {"type": "integer", "format": "int64"}
    if desc:
        out["description"] = desc
    return out


def b(desc=None):
    out = {"type": "boolean"}
    if desc:
        out["description"] = desc
    return out


def strmap(desc=None, atomic=False):
    out = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
    if desc:
        out["description"] = desc
    if atomic:
        out["x-kubernetes-map-type"] = "atomic"
    return out


def strlist(desc=None, list_type="atomic", strategy=None):
    out = {"type": "array", "items": {"type": "string", "default": ""}}
    if desc:
        out["description"] = desc
    out["x-kubernetes-list-type"] = list_type
    if strategy:
        out["x-kubernetes-patch-strategy"] = strategy
    return out


def gvk(kind, group="", version="v1"):
    return {"group": group, "kind": kind, "version": version}


API_VERSION = s("APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
KIND = s("Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")

schemas = {}

# ---- meta.k8s.io/v1 ----
schemas[META + "Time"] = {
    "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
    "type": "string",
    "format": "date-time",
}
schemas[META + "FieldsV1"] = {
    "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
    "type": "object",
}
schemas[META + "ManagedFieldsEntry"] = {
    "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
    "type": "object",
    "properties": {
        "apiVersion": s("APIVersion defines the version of this resource that this field set applies to."),
        "fieldsType": s("FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
        "fieldsV1": ref_default(META + "FieldsV1", "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type."),
        "manager": s("Manager is an identifier of the workflow managing these fields."),
        "operation": s("Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
        "subresource": s("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource."),
        "time": ref_default(META + "Time", "Time is the timestamp of when the ManagedFields entry was added."),
    },
}
schemas[META + "OwnerReference"] = {
    "description": "OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.",
    "type": "object",
    "required": ["apiVersion", "kind", "name", "uid"],
    "properties": {
        "apiVersion": s("API version of the referent.", default=""),
        "blockOwnerDeletion": b("If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed."),
        "controller": b("If true, this reference points to the managing controller."),
        "kind": s("Kind of the referent.", default=""),
        "name": s("Name of the referent.", default=""),
        "uid": s("UID of the referent.", default=""),
    },
    "x-kubernetes-map-type": "atomic",
}
schemas[META + "ObjectMeta"] = {
    "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
    "type": "object",
    "properties": {
        "annotations": strmap("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
        "creationTimestamp": ref_default(META + "Time", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."),
        "deletionGracePeriodSeconds": i64("Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only."),
        "deletionTimestamp": {"allOf": [ref(META + "Time")], "description": "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. Read-only."},
        "finalizers": strlist("Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list.", list_type="set", strategy="merge"),
        "generateName": s("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
        "generation": i64("A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."),
        "labels": strmap("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
        "managedFields": {
            "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.",
            "type": "array",
            "items": ref_default(META + "ManagedFieldsEntry"),
            "x-kubernetes-list-type": "atomic",
        },
        "name": s("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
        "namespace": s("Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
        "ownerReferences": {
            "description": "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected.",
            "type": "array",
            "items": ref_default(META + "OwnerReference"),
            "x-kubernetes-list-map-keys": ["uid"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "uid",
            "x-kubernetes-patch-strategy": "merge",
        },
        "resourceVersion": s("An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
        "selfLink": s("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
        "uid": s("UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations. Populated by the system. Read-only. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
    },
}
schemas[META + "ListMeta"] = {
    "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
    "type": "object",
    "properties": {
        "continue": s("continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available. The value is opaque and may be used to issue another request to the endpoint that served this list to retrieve the next set of available objects."),
        "remainingItemCount": i64("remainingItemCount is the number of subsequent items in the list which are not included in this list response."),
        "resourceVersion": s("String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed. Value must be treated as opaque by clients and passed unmodified back to the server. Populated by the system. Read-only."),
        "selfLink": s("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
    },
}
schemas[META + "StatusCause"] = {
    "description": "StatusCause provides more information about an api.Status failure, including cases when multiple errors are encountered.",
    "type": "object",
    "properties": {
        "field": s("The field of the resource that has caused this error, as named by its JSON serialization. May include dot and postfix notation for nested attributes. Arrays are zero-indexed."),
        "message": s("A human-readable description of the cause of the error.  This field may be presented as-is to a reader."),
        "reason": s("A machine-readable description of the cause of the error. If this value is empty there is no information available."),
    },
}
schemas[META + "StatusDetails"] = {
    "description": "StatusDetails is a set of additional properties that MAY be set by the server to provide additional information about a response.",
    "type": "object",
    "properties": {
        "causes": {
            "description": "The Causes array includes more details associated with the StatusReason failure.",
            "type": "array",
            "items": ref_default(META + "StatusCause"),
            "x-kubernetes-list-type": "atomic",
        },
        "group": s("The group attribute of the resource associated with the status StatusReason."),
        "kind": s("The kind attribute of the resource associated with the status StatusReason."),
        "name": s("The name attribute of the resource associated with the status StatusReason (when there is a single name which can be described)."),
        "retryAfterSeconds": i32("If specified, the time in seconds before the operation should be retried."),
        "uid": s("UID of the resource. (when there is a single resource which can be described)."),
    },
}
schemas[META + "Status"] = {
    "description": "Status is a return value for calls that don't return other objects.",
    "type": "object",
    "properties": {
        "apiVersion": API_VERSION,
        "code": i32("Suggested HTTP return code for this status, 0 if not set."),
        "details": {"allOf": [ref(META + "StatusDetails")], "description": "Extended data associated with the reason.  Each reason may define its own extended details."},
        "kind": KIND,
        "message": s("A human-readable description of the status of this operation."),
        "metadata": ref_default(META + "ListMeta", "Standard list metadata."),
        "reason": s("A machine-readable description of why this operation is in the \"Failure\" status."),
        "status": s("Status of the operation. One of: \"Success\" or \"Failure\"."),
    },
    "x-kubernetes-group-version-kind": [gvk("Status")],
}
schemas[META + "Preconditions"] = {
    "description": "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
    "type": "object",
    "properties": {
        "resourceVersion": s("Specifies the target ResourceVersion"),
        "uid": s("Specifies the target UID."),
    },
}
schemas[META + "DeleteOptions"] = {
    "description": "DeleteOptions may be provided when deleting an API object.",
    "type": "object",
    "properties": {
        "apiVersion": API_VERSION,
        "dryRun": strlist("When present, indicates that modifications should not be persisted."),
        "gracePeriodSeconds": i64("The duration in seconds before the object should be deleted."),
        "ignoreStoreReadErrorWithClusterBreakingPotential": b("if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."),
        "kind": KIND,
        "orphanDependents": b("Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7."),
        "preconditions": {"allOf": [ref(META + "Preconditions")], "description": "Must be fulfilled before a deletion is carried out. If not possible, a 409 Conflict status will be returned."},
        "propagationPolicy": s("Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
    },
    "x-kubernetes-group-version-kind": [gvk("DeleteOptions")],
}
schemas[META + "Condition"] = {
    "description": "Condition contains details for one aspect of the current state of this API Resource.",
    "type": "object",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "lastTransitionTime": ref(META + "Time"),
        "message": s("message is a human readable message indicating details about the transition.", default=""),
        "observedGeneration": i64("observedGeneration represents the .metadata.generation that the condition was set based upon."),
        "reason": s("reason contains a programmatic identifier indicating the reason for the condition's last transition.", default=""),
        "status": s("status of the condition, one of True, False, Unknown.", default=""),
        "type": s("type of condition in CamelCase or in foo.example.com/CamelCase.", default=""),
    },
}
schemas[META + "WatchEvent"] = {
    "description": "Event represents a single event to a watched resource.",
    "type": "object",
    "required": ["type", "object"],
    "properties": {
        "object": {"allOf": [ref("io.k8s.apimachinery.pkg.runtime.RawExtension")], "description": "Object is:\n * If Type is Added or Modified: the new state of the object.\n * If Type is Deleted: the state of the object immediately before deletion.\n * If Type is Error: *Status is recommended; other types may make sense\n   depending on context."},
        "type": s(default=""),
    },
    "x-kubernetes-group-version-kind": [gvk("WatchEvent")],
}
schemas[META + "Patch"] = {
    "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
    "type": "object",
}
schemas[META + "APIResource"] = {
    "description": "APIResource specifies the name of a resource and whether it is namespaced.",
    "type": "object",
    "required": ["name", "singularName", "namespaced", "kind", "verbs"],
    "properties": {
        "categories": strlist("categories is a list of the grouped resources this resource belongs to (e.g. 'all')"),
        "group": s("group is the preferred group of the resource."),
        "kind": s("kind is the kind for the resource (e.g. 'Foo' is the kind for a resource 'foo')", default=""),
        "name": s("name is the plural name of the resource.", default=""),
        "namespaced": b("namespaced indicates if a resource is namespaced or not."),
        "shortNames": strlist("shortNames is a list of suggested short names of the resource."),
        "singularName": s("singularName is the singular name of the resource.", default=""),
        "storageVersionHash": s("The hash value of the storage version, the version this resource is converted to when written to the data store."),
        "verbs": strlist("verbs is a list of supported kube verbs (this includes get, list, watch, create, update, patch, delete, deletecollection, and proxy)"),
        "version": s("version is the preferred version of the resource."),
    },
}
schemas[META + "APIResourceList"] = {
    "description": "APIResourceList is a list of APIResource, it is used to expose the name of the resources supported in a specific group and version, and if the resource is namespaced.",
    "type": "object",
    "required": ["groupVersion", "resources"],
    "properties": {
        "apiVersion": API_VERSION,
        "groupVersion": s("groupVersion is the group and version this APIResourceList is for.", default=""),
        "kind": KIND,
        "resources": {"description": "resources contains the name of the resources and if they are namespaced.", "type": "array", "items": ref_default(META + "APIResource"), "x-kubernetes-list-type": "atomic"},
    },
    "x-kubernetes-group-version-kind": [gvk("APIResourceList")],
}
schemas["io.k8s.apimachinery.pkg.runtime.RawExtension"] = {
    "description": "RawExtension is used to hold extensions in external versions.",
    "type": "object",
}
schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.",
    "type": "string",
    "format": "int-or-string",
}

# ---- core/v1 Service ----
schemas[CORE + "ClientIPConfig"] = {
    "description": "ClientIPConfig represents the configurations of Client IP based session affinity.",
    "type": "object",
    "properties": {
        "timeoutSeconds": i32("timeoutSeconds specifies the seconds of ClientIP type session sticky time. The value must be >0 && <=86400(for 1 day) if ServiceAffinity == \"ClientIP\". Default value is 10800(for 3 hours)."),
    },
}
schemas[CORE + "SessionAffinityConfig"] = {
    "description": "SessionAffinityConfig represents the configurations of session affinity.",
    "type": "object",
    "properties": {
        "clientIP": {"allOf": [ref(CORE + "ClientIPConfig")], "description": "clientIP contains the configurations of Client IP based session affinity."},
    },
}
schemas[CORE + "ServicePort"] = {
    "description": "ServicePort contains information on service's port.",
    "type": "object",
    "required": ["port"],
    "properties": {
        "appProtocol": s("The application protocol for this port. This is used as a hint for implementations to offer richer behavior for protocols that they understand."),
        "name": s("The name of this port within the service. This must be a DNS_LABEL. All ports within a ServiceSpec must have unique names. When considering the endpoints for a Service, this must match the 'name' field in the EndpointPort. Optional if only one ServicePort is defined on this service."),
        "nodePort": i32("The port on each node on which this service is exposed when type is NodePort or LoadBalancer.  Usually assigned by the system. If a value is specified, in-range, and not in use it will be used, otherwise the operation will fail.  More info: https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport"),
        "port": dict(i32("The port that will be exposed by this service."), default=0),
        "protocol": s("The IP protocol for this port. Supports \"TCP\", \"UDP\", and \"SCTP\". Default is TCP.\n\nPossible enum values:\n - `\"SCTP\"` is the SCTP protocol.\n - `\"TCP\"` is the TCP protocol.\n - `\"UDP\"` is the UDP protocol.", default="TCP", enum=["SCTP", "TCP", "UDP"]),
        "targetPort": {"allOf": [ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString")], "description": "Number or name of the port to access on the pods targeted by the service. Number must be in the range 1 to 65535. Name must be an IANA_SVC_NAME. If this is a string, it will be looked up as a named port in the target Pod's container ports. If this is not specified, the value of the 'port' field is used (an identity map). More info: https://kubernetes.io/docs/concepts/services-networking/service/#defining-a-service"},
    },
}
schemas[CORE + "PortStatus"] = {
    "description": "PortStatus represents the error condition of a service port",
    "type": "object",
    "required": ["port", "protocol"],
    "properties": {
        "error": s("Error is to record the problem with the service port."),
        "port": dict(i32("Port is the port number of the service port of which status is recorded here"), default=0),
        "protocol": s("Protocol is the protocol of the service port of which status is recorded here", default="", enum=["SCTP", "TCP", "UDP"]),
    },
}
schemas[CORE + "LoadBalancerIngress"] = {
    "description": "LoadBalancerIngress represents the status of a load-balancer ingress point: traffic intended for the service should be sent to an ingress point.",
    "type": "object",
    "properties": {
        "hostname": s("Hostname is set for load-balancer ingress points that are DNS based (typically AWS load-balancers)"),
        "ip": s("IP is set for load-balancer ingress points that are IP based (typically GCE or OpenStack load-balancers)"),
        "ipMode": s("IPMode specifies how the load-balancer IP behaves, and may only be specified when the ip field is specified. Setting this to \"VIP\" indicates that traffic is delivered to the node with the destination set to the load-balancer's IP and port. Setting this to \"Proxy\" indicates that traffic is delivered to the node or pod with the destination set to the node's IP and node port or the pod's IP and port."),
        "ports": {"description": "Ports is a list of records of service ports If used, every port defined in the service should have an entry in it", "type": "array", "items": ref_default(CORE + "PortStatus"), "x-kubernetes-list-type": "atomic"},
    },
}
schemas[CORE + "LoadBalancerStatus"] = {
    "description": "LoadBalancerStatus represents the status of a load-balancer.",
    "type": "object",
    "properties": {
        "ingress": {"description": "Ingress is a list containing ingress points for the load-balancer. Traffic intended for the service should be sent to these ingress points.", "type": "array", "items": ref_default(CORE + "LoadBalancerIngress"), "x-kubernetes-list-type": "atomic"},
    },
}
schemas[CORE + "ServiceStatus"] = {
    "description": "ServiceStatus represents the current status of a service.",
    "type": "object",
    "properties": {
        "conditions": {
            "description": "Current service state",
            "type": "array",
            "items": ref_default(META + "Condition"),
            "x-kubernetes-list-map-keys": ["type"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "type",
            "x-kubernetes-patch-strategy": "merge",
        },
        "loadBalancer": ref_default(CORE + "LoadBalancerStatus", "LoadBalancer contains the current status of the load-balancer, if one is present."),
    },
}
schemas[CORE + "ServiceSpec"] = {
    "description": "ServiceSpec describes the attributes that a user creates on a service.",
    "type": "object",
    "properties": {
        "allocateLoadBalancerNodePorts": b("allocateLoadBalancerNodePorts defines if NodePorts will be automatically allocated for services with type LoadBalancer.  Default is \"true\"."),
        "clusterIP": s("clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName. Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP). More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
        "clusterIPs": strlist("ClusterIPs is a list of IP addresses assigned to this service, and are usually assigned randomly."),
        "externalIPs": strlist("externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes."),
        "externalName": s("externalName is the external reference that discovery mechanisms will return as an alias for this service (e.g. a DNS CNAME record). No proxying will be involved.  Must be a lowercase RFC-1123 hostname (https://tools.ietf.org/html/rfc1123) and requires `type` to be \"ExternalName\"."),
        "externalTrafficPolicy": s("externalTrafficPolicy describes how nodes distribute service traffic they receive on one of the Service's \"externally-facing\" addresses (NodePorts, ExternalIPs, and LoadBalancer IPs).\n\nPossible enum values:\n - `\"Cluster\"`\n - `\"Local\"`", enum=["Cluster", "Local"]),
        "healthCheckNodePort": i32("healthCheckNodePort specifies the healthcheck nodePort for the service. This only applies when type is set to LoadBalancer and externalTrafficPolicy is set to Local."),
        "internalTrafficPolicy": s("InternalTrafficPolicy describes how nodes distribute service traffic they receive on the ClusterIP.\n\nPossible enum values:\n - `\"Cluster\"`\n - `\"Local\"`", enum=["Cluster", "Local"]),
        "ipFamilies": strlist("IPFamilies is a list of IP families (e.g. IPv4, IPv6) assigned to this service."),
        "ipFamilyPolicy": s("IPFamilyPolicy represents the dual-stack-ness requested or required by this Service.\n\nPossible enum values:\n - `\"PreferDualStack\"`\n - `\"RequireDualStack\"`\n - `\"SingleStack\"`", enum=["PreferDualStack", "RequireDualStack", "SingleStack"]),
        "loadBalancerClass": s("loadBalancerClass is the class of the load balancer implementation this Service belongs to."),
        "loadBalancerIP": s("Only applies to Service Type: LoadBalancer. This feature depends on whether the underlying cloud-provider supports specifying the loadBalancerIP when a load balancer is created. Deprecated: This field was under-specified and its meaning varies across implementations."),
        "loadBalancerSourceRanges": strlist("If specified and supported by the platform, this will restrict traffic through the cloud-provider load-balancer will be restricted to the specified client IPs. More info: https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/"),
        "ports": {
            "description": "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
            "type": "array",
            "items": ref_default(CORE + "ServicePort"),
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "port",
            "x-kubernetes-patch-strategy": "merge",
        },
        "publishNotReadyAddresses": b("publishNotReadyAddresses indicates that any agent which deals with endpoints for this Service should disregard any indications of ready/not-ready."),
        "selector": strmap("Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/", atomic=True),
        "sessionAffinity": s("Supports \"ClientIP\" and \"None\". Used to maintain session affinity. Enable client IP based session affinity. Must be ClientIP or None. Defaults to None. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies\n\nPossible enum values:\n - `\"ClientIP\"` is the Client IP based.\n - `\"None\"` - no session affinity.", enum=["ClientIP", "None"]),
        "sessionAffinityConfig": {"allOf": [ref(CORE + "SessionAffinityConfig")], "description": "sessionAffinityConfig contains the configurations of session affinity."},
        "trafficDistribution": s("TrafficDistribution offers a way to express preferences for how traffic is distributed to Service endpoints."),
        "type": s("type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types\n\nPossible enum values:\n - `\"ClusterIP\"`\n - `\"ExternalName\"`\n - `\"LoadBalancer\"`\n - `\"NodePort\"`", enum=["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]),
    },
}
schemas[CORE + "Service"] = {
    "description": "Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.",
    "type": "object",
    "properties": {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": ref_default(META + "ObjectMeta", "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
        "spec": ref_default(CORE + "ServiceSpec", "Spec defines the behavior of a service. https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
        "status": ref_default(CORE + "ServiceStatus", "Most recently observed status of the service. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
    },
    "x-kubernetes-group-version-kind": [gvk("Service")],
}
schemas[CORE + "ServiceList"] = {
    "description": "ServiceList holds a list of services.",
    "type": "object",
    "required": ["items"],
    "properties": {
        "apiVersion": API_VERSION,
        "items": {"description": "List of services", "type": "array", "items": ref_default(CORE + "Service")},
        "kind": KIND,
        "metadata": ref_default(META + "ListMeta", "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
    },
    "x-kubernetes-group-version-kind": [gvk("ServiceList")],
}

# ---- core/v1 Namespace ----
schemas[CORE + "NamespaceCondition"] = {
    "description": "NamespaceCondition contains details about state of namespace.",
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "lastTransitionTime": ref(META + "Time"),
        "message": s(),
        "reason": s(),
        "status": s("Status of the condition, one of True, False, Unknown.", default=""),
        "type": s("Type of namespace controller condition.", default=""),
    },
}
schemas[CORE + "NamespaceSpec"] = {
    "description": "NamespaceSpec describes the attributes on a Namespace.",
    "type": "object",
    "properties": {
        "finalizers": strlist("Finalizers is an opaque list of values that must be empty to permanently remove object from storage. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/"),
    },
}
schemas[CORE + "NamespaceStatus"] = {
    "description": "NamespaceStatus is information about the current status of a Namespace.",
    "type": "object",
    "properties": {
        "conditions": {
            "description": "Represents the latest available observations of a namespace's current state.",
            "type": "array",
            "items": ref_default(CORE + "NamespaceCondition"),
            "x-kubernetes-list-map-keys": ["type"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "type",
            "x-kubernetes-patch-strategy": "merge",
        },
        "phase": s("Phase is the current lifecycle phase of the namespace. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/\n\nPossible enum values:\n - `\"Active\"` means the namespace is available for use in the system\n - `\"Terminating\"` means the namespace is undergoing graceful termination", enum=["Active", "Terminating"]),
    },
}
schemas[CORE + "Namespace"] = {
    "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
    "type": "object",
    "properties": {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": ref_default(META + "ObjectMeta", "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
        "spec": ref_default(CORE + "NamespaceSpec", "Spec defines the behavior of the Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
        "status": ref_default(CORE + "NamespaceStatus", "Status describes the current status of a Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
    },
    "x-kubernetes-group-version-kind": [gvk("Namespace")],
}
schemas[CORE + "NamespaceList"] = {
    "description": "NamespaceList is a list of Namespaces.",
    "type": "object",
    "required": ["items"],
    "properties": {
        "apiVersion": API_VERSION,
        "items": {"description": "Items is the list of Namespace objects in the list. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/", "type": "array", "items": ref_default(CORE + "Namespace")},
        "kind": KIND,
        "metadata": ref_default(META + "ListMeta", "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
    },
    "x-kubernetes-group-version-kind": [gvk("NamespaceList")],
}

# ---- parameters ----
def qparam(name, desc, schema, unique=True):
    return {"name": name, "in": "query", "description": desc, "schema": schema, "uniqueItems": unique}


def pparam(name, desc):
    return {"name": name, "in": "path", "description": desc, "required": True, "schema": {"type": "string", "uniqueItems": True}}


P = {
    "pretty": qparam("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).", {"type": "string"}),
    "dryRun": qparam("dryRun", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed", {"type": "string"}),
    "fieldManager": qparam("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.", {"type": "string"}),
    "fieldValidation": qparam("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.", {"type": "string"}),
    "force": qparam("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", {"type": "boolean"}),
    "allowWatchBookmarks": qparam("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.", {"type": "boolean"}),
    "continue": qparam("continue", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token.", {"type": "string"}),
    "fieldSelector": qparam("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything.", {"type": "string"}),
    "labelSelector": qparam("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything.", {"type": "string"}),
    "limit": qparam("limit", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.", {"type": "integer"}),
    "resourceVersion": qparam("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset", {"type": "string"}),
    "resourceVersionMatch": qparam("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset", {"type": "string"}),
    "sendInitialEvents": qparam("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.", {"type": "boolean"}),
    "timeoutSeconds": qparam("timeoutSeconds", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.", {"type": "integer"}),
    "watch": qparam("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.", {"type": "boolean"}),
    "gracePeriodSeconds": qparam("gracePeriodSeconds", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.", {"type": "integer"}),
    "orphanDependents": qparam("orphanDependents", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.", {"type": "boolean"}),
    "propagationPolicy": qparam("propagationPolicy", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.", {"type": "string"}),
}
LIST_PARAMS = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"]
NS_PARAM = pparam("namespace", "object name and auth scope, such as for teams and projects")
JSON_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
STREAM_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"]
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]


def content(schema_name, types=JSON_TYPES):
    return {t: {"schema": ref(schema_name)} for t in types}


def resp(code_schemas):
    out = {}
    for code, (desc, schema_name, types) in code_schemas.items():
        out[code] = {"description": desc, "content": content(schema_name, types)}
    out["401"] = {"description": "Unauthorized"}
    return out


def op(tags, desc, op_id, action, kind, params, responses, body=None, body_types=None):
    o = {"tags": tags, "description": desc, "operationId": op_id}
    if params:
        o["parameters"] = [P[p] if isinstance(p, str) else p for p in params]
    if body:
        o["requestBody"] = {"content": {t: {"schema": ref(body)} for t in (body_types or ["*/*"])}, "required": True}
    o["responses"] = responses
    o["x-kubernetes-action"] = action
    o["x-kubernetes-group-version-kind"] = gvk(kind)
    return o


def crud_paths(kind, plural, namespaced, item_ops=True):
    """Collection and item paths for one resource, like kube-apiserver's."""
    T = CORE + kind
    TL = CORE + kind + "List"
    word = kind
    nsword = "Namespaced" if namespaced else ""
    coll = "/api/v1/namespaces/{namespace}/" + plural if namespaced else "/api/v1/" + plural
    item = coll + "/{name}"
    name_param = pparam("name", "name of the " + word)
    pre = [NS_PARAM] if namespaced else []
    paths = {}
    paths[coll] = {
        "get": op(["core_v1"], "list or watch objects of kind " + word, "listCoreV1" + nsword + kind, "list", kind, LIST_PARAMS,
                  resp({"200": ("OK", TL, STREAM_TYPES)})),
        "post": op(["core_v1"], "create a " + word, "createCoreV1" + nsword + kind, "post", kind, ["dryRun", "fieldManager", "fieldValidation"],
                   resp({"200": ("OK", T, JSON_TYPES), "201": ("Created", T, JSON_TYPES), "202": ("Accepted", T, JSON_TYPES)}), body=T),
        "parameters": pre + [P["pretty"]],
    }
    paths[item] = {
        "get": op(["core_v1"], "read the specified " + word, "readCoreV1" + nsword + kind, "get", kind, [], resp({"200": ("OK", T, JSON_TYPES)})),
        "put": op(["core_v1"], "replace the specified " + word, "replaceCoreV1" + nsword + kind, "put", kind, ["dryRun", "fieldManager", "fieldValidation"],
                  resp({"200": ("OK", T, JSON_TYPES), "201": ("Created", T, JSON_TYPES)}), body=T),
        "delete": op(["core_v1"], "delete a " + word, "deleteCoreV1" + nsword + kind, "delete", kind, ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"],
                     resp({"200": ("OK", T if kind == "Service" else META + "Status", JSON_TYPES), "202": ("Accepted", T if kind == "Service" else META + "Status", JSON_TYPES)}), body=META + "DeleteOptions"),
        "patch": op(["core_v1"], "partially update the specified " + word, "patchCoreV1" + nsword + kind, "patch", kind, ["dryRun", "fieldManager", "fieldValidation", "force"],
                    resp({"200": ("OK", T, JSON_TYPES), "201": ("Created", T, JSON_TYPES)}), body=META + "Patch", body_types=PATCH_TYPES),
        "parameters": [name_param] + pre + [P["pretty"]],
    }
    paths[item]["delete"]["requestBody"]["required"] = False
    if kind == "Namespace":
        # The simulator serves no namespace status subresource.
        status_paths = {}
    else:
        status_paths = {item + "/status": None}
    paths[item + "/status"] = {
        "get": op(["core_v1"], "read status of the specified " + word, "readCoreV1" + nsword + kind + "Status", "get", kind, [], resp({"200": ("OK", T, JSON_TYPES)})),
        "put": op(["core_v1"], "replace status of the specified " + word, "replaceCoreV1" + nsword + kind + "Status", "put", kind, ["dryRun", "fieldManager", "fieldValidation"],
                  resp({"200": ("OK", T, JSON_TYPES), "201": ("Created", T, JSON_TYPES)}), body=T),
        "patch": op(["core_v1"], "partially update status of the specified " + word, "patchCoreV1" + nsword + kind + "Status", "patch", kind, ["dryRun", "fieldManager", "fieldValidation", "force"],
                    resp({"200": ("OK", T, JSON_TYPES), "201": ("Created", T, JSON_TYPES)}), body=META + "Patch", body_types=PATCH_TYPES),
        "parameters": [name_param] + pre + [P["pretty"]],
    }
    if not status_paths:
        del paths[item + "/status"]
    if kind == "Service":
        paths[coll]["delete"] = op(["core_v1"], "delete collection of " + word, "deleteCoreV1CollectionNamespaced" + kind, "deletecollection", kind,
                                   LIST_PARAMS[:5] + ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"] + LIST_PARAMS[5:9],
                                   resp({"200": ("OK", TL, JSON_TYPES)}), body=META + "DeleteOptions")
        paths[coll]["delete"]["requestBody"]["required"] = False
    wcoll = "/api/v1/watch/namespaces/{namespace}/" + plural if namespaced else "/api/v1/watch/" + plural
    paths[wcoll] = {
        "get": op(["core_v1"], "watch individual changes to a list of " + word + ". deprecated: use the 'watch' parameter with a list operation instead.",
                  "watchCoreV1" + nsword + kind + "List", "watchlist", kind, [], resp({"200": ("OK", META + "WatchEvent", STREAM_TYPES)})),
        "parameters": [P[p] for p in LIST_PARAMS[:5]] + pre + [P["pretty"]] + [P[p] for p in LIST_PARAMS[5:]],
    }
    paths[wcoll + "/{name}"] = {
        "get": op(["core_v1"], "watch changes to an object of kind " + word + ". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
                  "watchCoreV1" + nsword + kind, "watch", kind, [], resp({"200": ("OK", META + "WatchEvent", STREAM_TYPES)})),
        "parameters": [P[p] for p in LIST_PARAMS[:5]] + [name_param] + pre + [P["pretty"]] + [P[p] for p in LIST_PARAMS[5:]],
    }
    return paths


paths = {}
paths["/api/v1/"] = {
    "get": {
        "tags": ["core_v1"],
        "description": "get available resources",
        "operationId": "getCoreV1APIResources",
        "responses": {"200": {"description": "OK", "content": content(META + "APIResourceList")}, "401": {"description": "Unauthorized"}},
    }
}
paths.update(crud_paths("Namespace", "namespaces", False))
paths.update(crud_paths("Service", "services", True))
# kube-apiserver has no POST on the namespace status path's collection; remove what does not exist.
paths["/api/v1/services"] = {
    "get": op(["core_v1"], "list or watch objects of kind Service", "listCoreV1ServiceForAllNamespaces", "list", "Service", [],
              resp({"200": ("OK", CORE + "ServiceList", STREAM_TYPES)})),
    "parameters": [P[p] for p in LIST_PARAMS[:5]] + [P["pretty"]] + [P[p] for p in LIST_PARAMS[5:]],
}
paths["/api/v1/watch/services"] = {
    "get": op(["core_v1"], "watch individual changes to a list of Service. deprecated: use the 'watch' parameter with a list operation instead.",
              "watchCoreV1ServiceListForAllNamespaces", "watchlist", "Service", [], resp({"200": ("OK", META + "WatchEvent", STREAM_TYPES)})),
    "parameters": [P[p] for p in LIST_PARAMS[:5]] + [P["pretty"]] + [P[p] for p in LIST_PARAMS[5:]],
}
for suffix, extra in (("/proxy", []), ("/proxy/{path}", [pparam("path", "path to the resource")])):
    p = "/api/v1/namespaces/{namespace}/services/{name}" + suffix
    item = {}
    for method in ("get", "put", "post", "delete", "options", "head", "patch"):
        opname = {"get": "Get", "put": "Put", "post": "Post", "delete": "Delete", "options": "Options", "head": "Head", "patch": "Patch"}[method]
        o = {
            "tags": ["core_v1"],
            "description": "connect " + opname.upper() + " requests to proxy of Service",
            "operationId": "connectCoreV1" + opname + "NamespacedServiceProxy" + ("WithPath" if extra else ""),
            "responses": {"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": "connect",
            "x-kubernetes-group-version-kind": gvk("ServiceProxyOptions"),
        }
        item[method] = o
    item["parameters"] = [pparam("name", "name of the ServiceProxyOptions"), NS_PARAM] + extra + [
        qparam("path", "Path is the part of URLs that include service endpoints, suffixes, and parameters to use for the current proxy request to service. For example, the whole request URL is http://localhost/api/v1/namespaces/kube-system/services/elasticsearch-logging/_search?q=user:kimchy. Path is _search?q=user:kimchy.", {"type": "string"})
    ]
    paths[p] = item

doc = {
    "openapi": "3.0.0",
    "info": {"title": "Kubernetes", "version": "v1.32.0"},
    "paths": dict(sorted(paths.items())),
    "components": {
        "schemas": dict(sorted(schemas.items())),
        "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
    },
    "security": [{"BearerToken": []}],
}
json.dump(doc, sys.stdout, indent=1, sort_keys=False)
sys.stdout.write("\n")
