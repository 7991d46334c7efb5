// Drives kubeplex with Backstage's own frontend client, KubernetesBackendClient from
// @backstage/plugin-kubernetes-react, unchanged. Prints one JSON object on stdout:
// {clusters, proxied: {status, headers, body}}.
//
// usage: node client.mjs BASE_URL CLUSTER_NAME PATH
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

const [baseUrl, clusterName, proxyPath] = process.argv.slice(2);
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
const clusters = await client.getClusters();
const res = await client.proxy({ clusterName, path: proxyPath });
const body = await res.text();
console.log(JSON.stringify({
  clusters,
  proxied: { status: res.status, headers: Object.fromEntries(res.headers), body },
}));
