// Drives kubeplex with Backstage's own frontend client, KubernetesBackendClient from
// @backstage/plugin-kubernetes-react, unchanged. Prints one JSON object on stdout.
//
// usage: node client.mjs BASE_URL CLUSTER_NAME PATH
//   lists the clusters and proxies PATH to CLUSTER_NAME: {clusters, proxied: {status,
//   headers, body}}.
// usage: node client.mjs --entity BASE_URL
//   asks for an entity's objects as the Kubernetes tab does: {objects, workloads, custom},
//   the answers of getObjectsByEntity, getWorkloadsByEntity and getCustomObjectsByEntity
//   (each {error: message} when the call throws).
//   env ENTITY: the entity (JSON); env AUTH: the request body's `auth` (JSON);
//   env CUSTOM_RESOURCES: the custom query's customResources (JSON).
//
//   env PROVIDER_TOKENS: JSON map of auth provider id ("oidc.okta", "google", ...) to the
//   token kubernetesAuthProvidersApi returns for it.
//   env BACKSTAGE_USER_TOKEN: the portal token Backstage's fetchApi adds to every call.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);
const pkg = path.dirname(require.resolve('@backstage/plugin-kubernetes-react/package.json'));
const { KubernetesBackendClient } = await import(
  pathToFileURL(path.join(pkg, 'dist/api/KubernetesBackendClient.esm.js')).href
);

const args = process.argv.slice(2);
const entityMode = args[0] === '--entity';
const [baseUrl, clusterName, proxyPath] = entityMode ? [args[1]] : args;
const providerTokens = JSON.parse(process.env.PROVIDER_TOKENS ?? '{}');
const userToken = process.env.BACKSTAGE_USER_TOKEN;

// As Backstage's FetchApi does: the user's portal token on every call.
const fetchApi = {
  fetch: (url, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    if (userToken) headers.set('Authorization', `Bearer ${userToken}`);
    return fetch(url, { ...init, headers });
  },
};
const discoveryApi = { getBaseUrl: async plugin => `${baseUrl}/api/${plugin}` };
const kubernetesAuthProvidersApi = {
  getCredentials: async provider =>
    provider in providerTokens ? { token: providerTokens[provider] } : {},
};

const client = new KubernetesBackendClient({ discoveryApi, fetchApi, kubernetesAuthProvidersApi });

if (entityMode) {
  const entity = JSON.parse(process.env.ENTITY);
  const auth = JSON.parse(process.env.AUTH ?? '{}');
  const customResources = JSON.parse(process.env.CUSTOM_RESOURCES ?? '[]');
  const settle = promise => promise.catch(e => ({ error: String(e?.message ?? e) }));
  const [objects, workloads, custom] = await Promise.all([
    settle(client.getObjectsByEntity({ entity, auth })),
    settle(client.getWorkloadsByEntity({ entity, auth })),
    settle(client.getCustomObjectsByEntity({ entity, auth, customResources })),
  ]);
  console.log(JSON.stringify({ objects, workloads, custom }));
} else {
  const clusters = await client.getClusters();
  const res = await client.proxy({ clusterName, path: proxyPath });
  const body = await res.text();
  console.log(JSON.stringify({
    clusters,
    proxied: { status: res.status, headers: Object.fromEntries(res.headers), body },
  }));
}
