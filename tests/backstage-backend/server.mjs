// Runs Backstage's own Kubernetes backend (@backstage/plugin-kubernetes-backend) standalone,
// so tests can send the same requests to it and to kubeplex and compare the answers.
//
//   node server.mjs <config.json>
//
// config.json: { "kubernetes": { ...app-config `kubernetes` block... },
//                "entities": [ ...catalog entities... ],
//                ...any other app-config keys (merged over the defaults below) }
//
// The backend is Backstage's new backend system (createSpecializedBackend) with the real
// service factories of @backstage/backend-defaults for the HTTP stack (rootHttpRouter with
// its helmet/cors/compression/logging/notFound/error middleware, httpRouter with the
// credentials barrier, lifecycle, auditor, permissionsRegistry, actionsRegistry) and, in
// place of the real auth stack, copies of @backstage/backend-test-utils' mockServices
// (MockAuthService, MockHttpAuthService, MockUserInfoService, an allow-all permissions
// service): a request without Authorization is the mock user `user:default/mock`, as is
// `Authorization: Bearer mock-user-token`; any other bearer token that is not a mock token
// is refused with 401. backend-test-utils itself is not installed: the version the backend
// was released with (1.12.0) is not in the npm registry, and 1.11.7 would add a second
// backend-defaults and a native SQLite build.
//
// A tiny catalog plugin (id `catalog`, so at /api/catalog) serves `entities` over HTTP:
//   GET  /api/catalog/entities/by-name/:kind/:namespace/:name   (404 NotFoundError if absent)
//   POST /api/catalog/entities/by-refs                          ({entityRefs} -> {items})
//   GET  /api/catalog/entities?filter=k=v,k2                    (the CatalogClient filter syntax)
//   GET  /api/catalog/_last-authorization  -> {"authorization": <header or null>, "method", "path"}
//        (the last request to the routes above; `_requests` lists them all)
// It accepts every caller (auth policy `unauthenticated`), so kubeplex can use it too.
//
// Prints exactly one line `LISTENING <port>` on stdout once it serves on 127.0.0.1:<port>;
// logs go to stderr (level from BACKSTAGE_LOG_LEVEL, default `info`). Exits when stdin
// closes, on SIGTERM or on SIGINT.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { createSpecializedBackend } = require('@backstage/backend-app-api');
const {
  coreServices,
  createBackendPlugin,
  createServiceFactory,
} = require('@backstage/backend-plugin-api');
const { ConfigReader } = require('@backstage/config');
const { AuthenticationError, NotAllowedError, NotFoundError, InputError } = require('@backstage/errors');
const { auditorServiceFactory } = require('@backstage/backend-defaults/auditor');
const { httpRouterServiceFactory } = require('@backstage/backend-defaults/httpRouter');
const { lifecycleServiceFactory } = require('@backstage/backend-defaults/lifecycle');
const { loggerServiceFactory } = require('@backstage/backend-defaults/logger');
const { permissionsRegistryServiceFactory } = require('@backstage/backend-defaults/permissionsRegistry');
const { rootHealthServiceFactory } = require('@backstage/backend-defaults/rootHealth');
const { rootHttpRouterServiceFactory } = require('@backstage/backend-defaults/rootHttpRouter');
const { rootLifecycleServiceFactory } = require('@backstage/backend-defaults/rootLifecycle');
const { actionsRegistryServiceFactory, actionsServiceFactory } = require('@backstage/backend-defaults/alpha');
const express = require('express');

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: node server.mjs <config.json>\n');
  process.exit(2);
}
const { entities = [], ...appConfig } = JSON.parse(readFileSync(configPath, 'utf8'));

// ---------------------------------------------------------------------------------------
// Logging: everything on stderr, one line per message.

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };
const maxLevel = LEVELS[process.env.BACKSTAGE_LOG_LEVEL ?? 'info'] ?? LEVELS.info;

function stderrLogger(fields = {}) {
  const log = level => (message, meta) => {
    if (LEVELS[level] > maxLevel) return;
    const extra = meta instanceof Error ? { error: String(meta) } : meta;
    process.stderr.write(
      `${JSON.stringify({ level, message: String(message), ...fields, ...extra })}\n`,
    );
  };
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    child: meta => stderrLogger({ ...fields, ...meta }),
  };
}

// ---------------------------------------------------------------------------------------
// Mock auth, as @backstage/backend-test-utils' mockServices (mockCredentials,
// MockAuthService, MockHttpAuthService, MockUserInfoService, MockPermissionsService).

const DEFAULT_MOCK_USER_ENTITY_REF = 'user:default/mock';
const DEFAULT_MOCK_SERVICE_SUBJECT = 'external:test-service';
const MOCK_NONE_TOKEN = 'mock-none-token';
const MOCK_USER_TOKEN = 'mock-user-token';
const MOCK_USER_TOKEN_PREFIX = 'mock-user-token:';
const MOCK_USER_LIMITED_TOKEN_PREFIX = 'mock-limited-user-token:';
const MOCK_SERVICE_TOKEN = 'mock-service-token';
const MOCK_SERVICE_TOKEN_PREFIX = 'mock-service-token:';

const creds = {
  none: () => ({ $$type: '@backstage/BackstageCredentials', version: 'v1', principal: { type: 'none' } }),
  user: (userEntityRef = DEFAULT_MOCK_USER_ENTITY_REF) => ({
    $$type: '@backstage/BackstageCredentials',
    version: 'v1',
    principal: { type: 'user', userEntityRef },
  }),
  service: (subject = DEFAULT_MOCK_SERVICE_SUBJECT) => ({
    $$type: '@backstage/BackstageCredentials',
    version: 'v1',
    principal: { type: 'service', subject },
  }),
};

class MockAuthService {
  constructor(pluginId) {
    this.pluginId = pluginId;
  }
  async authenticate(token, options) {
    switch (token) {
      case MOCK_USER_TOKEN:
        return creds.user();
      case MOCK_SERVICE_TOKEN:
        return creds.service();
      case '':
        throw new AuthenticationError('Token is empty');
    }
    if (token.startsWith(MOCK_USER_TOKEN_PREFIX)) {
      return creds.user(JSON.parse(token.slice(MOCK_USER_TOKEN_PREFIX.length)).sub);
    }
    if (token.startsWith(MOCK_USER_LIMITED_TOKEN_PREFIX)) {
      if (!options?.allowLimitedAccess) {
        throw new AuthenticationError('Limited user token is not allowed');
      }
      return creds.user(JSON.parse(token.slice(MOCK_USER_LIMITED_TOKEN_PREFIX.length)).sub);
    }
    if (token.startsWith(MOCK_SERVICE_TOKEN_PREFIX)) {
      const { sub, target, obo } = JSON.parse(token.slice(MOCK_SERVICE_TOKEN_PREFIX.length));
      if (target && target !== this.pluginId) {
        throw new AuthenticationError(
          `Invalid mock token target plugin ID, got '${target}' but expected '${this.pluginId}'`,
        );
      }
      return obo ? creds.user(obo) : creds.service(sub);
    }
    throw new AuthenticationError(`Unknown mock token '${token}'`);
  }
  async getNoneCredentials() {
    return creds.none();
  }
  async getOwnServiceCredentials() {
    return creds.service(`plugin:${this.pluginId}`);
  }
  isPrincipal(credentials, type) {
    return type === 'unknown' || credentials.principal.type === type;
  }
  async getPluginRequestToken({ onBehalfOf, targetPluginId }) {
    const p = onBehalfOf.principal;
    if (p.type !== 'user' && p.type !== 'service') {
      throw new AuthenticationError(`Refused to issue service token for credential type '${p.type}'`);
    }
    const token = `${MOCK_SERVICE_TOKEN_PREFIX}${JSON.stringify({
      sub: p.type === 'service' ? p.subject : undefined,
      obo: p.type === 'user' ? p.userEntityRef : undefined,
      target: targetPluginId,
    })}`;
    return { token };
  }
  async getLimitedUserToken(credentials) {
    if (credentials.principal.type !== 'user') {
      throw new AuthenticationError(
        `Refused to issue limited user token for credential type '${credentials.principal.type}'`,
      );
    }
    const token = `${MOCK_USER_LIMITED_TOKEN_PREFIX}${JSON.stringify({ sub: credentials.principal.userEntityRef })}`;
    return { token, expiresAt: new Date(Date.now() + 3600e3) };
  }
  listPublicServiceKeys() {
    throw new Error('Not implemented');
  }
}

class MockHttpAuthService {
  constructor(pluginId) {
    this.auth = new MockAuthService(pluginId);
  }
  async credentials(req, options) {
    const header = req.headers.authorization;
    const token = typeof header === 'string' ? header.match(/^Bearer[ ]+(\S+)$/i)?.[1] : undefined;
    let credentials = creds.user();
    if (token === MOCK_NONE_TOKEN) {
      credentials = creds.none();
    } else if (token) {
      credentials = await this.auth.authenticate(token, {
        allowLimitedAccess: options?.allowLimitedAccess ?? false,
      });
    }
    const allow = options?.allow;
    if (!allow) return credentials;
    const type = credentials.principal.type;
    if (allow.includes(type)) return credentials;
    if (type === 'none') throw new AuthenticationError('Missing credentials');
    throw new NotAllowedError(`This endpoint does not allow '${type}' credentials`);
  }
  async issueUserCookie() {
    return { expiresAt: new Date(Date.now() + 3600e3) };
  }
}

// ---------------------------------------------------------------------------------------
// The port is known once the root router listens; discovery answers with it.

let httpServer;
const baseUrl = () => `http://127.0.0.1:${httpServer.address().port}`;

const factories = [
  createServiceFactory({
    service: coreServices.rootConfig,
    deps: {},
    factory: () =>
      new ConfigReader(
        {
          ...appConfig,
          backend: {
            baseUrl: 'http://127.0.0.1',
            listen: { host: '127.0.0.1', port: 0 },
            ...appConfig.backend,
          },
        },
        'kubeplex-test',
      ),
  }),
  createServiceFactory({
    service: coreServices.rootLogger,
    deps: {},
    factory: () => stderrLogger({ service: 'backstage' }),
  }),
  createServiceFactory({
    service: coreServices.discovery,
    deps: {},
    factory: () => ({
      getBaseUrl: async pluginId => `${baseUrl()}/api/${pluginId}`,
      getExternalBaseUrl: async pluginId => `${baseUrl()}/api/${pluginId}`,
    }),
  }),
  createServiceFactory({
    service: coreServices.auth,
    deps: { plugin: coreServices.pluginMetadata },
    factory: ({ plugin }) => new MockAuthService(plugin.getId()),
  }),
  createServiceFactory({
    service: coreServices.httpAuth,
    deps: { plugin: coreServices.pluginMetadata },
    factory: ({ plugin }) => new MockHttpAuthService(plugin.getId()),
  }),
  createServiceFactory({
    service: coreServices.userInfo,
    deps: {},
    factory: () => ({
      async getUserInfo(credentials) {
        if (credentials.principal.type !== 'user') {
          throw new InputError(`User info not available for principal type '${credentials.principal.type}'`);
        }
        const ref = credentials.principal.userEntityRef;
        return { userEntityRef: ref, ownershipEntityRefs: [ref] };
      },
    }),
  }),
  createServiceFactory({
    service: coreServices.permissions,
    deps: {},
    factory: () => ({
      authorize: async requests => requests.map(r => ({ ...r, result: 'ALLOW' })),
      authorizeConditional: async requests => requests.map(r => ({ ...r, result: 'ALLOW' })),
    }),
  }),
  rootHttpRouterServiceFactory({
    configure({ server, applyDefaults }) {
      httpServer = server;
      applyDefaults();
    },
  }),
  auditorServiceFactory,
  httpRouterServiceFactory,
  lifecycleServiceFactory,
  loggerServiceFactory,
  permissionsRegistryServiceFactory,
  rootHealthServiceFactory,
  rootLifecycleServiceFactory,
  actionsRegistryServiceFactory,
  actionsServiceFactory,
];

// ---------------------------------------------------------------------------------------
// The catalog.

const lower = s => String(s ?? '').toLocaleLowerCase('en-US');
const keyOf = e => `${lower(e.kind)}:${lower(e.metadata?.namespace ?? 'default')}/${lower(e.metadata?.name)}`;
const byKey = new Map(entities.map(e => [keyOf(e), e]));

function parseRef(ref) {
  const m = /^(?:([^:/]+):)?(?:([^:/]+)\/)?([^:/]+)$/.exec(String(ref));
  if (!m || !m[1]) return undefined;
  return `${lower(m[1])}:${lower(m[2] ?? 'default')}/${lower(m[3])}`;
}

function getPath(obj, path) {
  // Keys may contain dots (annotations such as backstage.io/x): try the longest match.
  if (obj === null || typeof obj !== 'object') return undefined;
  if (path in obj) return obj[path];
  const parts = path.split('.');
  for (let i = parts.length - 1; i > 0; i--) {
    const head = parts.slice(0, i).join('.');
    if (head in obj) return getPath(obj[head], parts.slice(i).join('.'));
  }
  return undefined;
}

function matchesFilter(entity, filter) {
  // One `filter` parameter: comma-separated `key=value` (or `key` for "exists"), all must hold.
  return filter.split(',').every(part => {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = getPath(entity, key);
    if (eq < 0) return value !== undefined;
    const want = lower(part.slice(eq + 1));
    const values = Array.isArray(value) ? value : [value];
    return values.some(v => v !== undefined && lower(v) === want);
  });
}

const requests = [];

const catalogPlugin = createBackendPlugin({
  pluginId: 'catalog',
  register(env) {
    env.registerInit({
      deps: { http: coreServices.httpRouter },
      async init({ http }) {
        const router = express.Router();
        router.use(express.json());
        router.use((req, _res, next) => {
          if (!req.path.startsWith('/_')) {
            requests.push({
              method: req.method,
              path: req.originalUrl.replace(/^\/api\/catalog/, ''),
              authorization: req.headers.authorization ?? null,
            });
          }
          next();
        });
        router.get('/_last-authorization', (_req, res) => {
          const last = requests[requests.length - 1];
          res.json(last ?? { authorization: null, method: null, path: null });
        });
        router.get('/_requests', (_req, res) => res.json(requests));
        router.get('/entities/by-name/:kind/:namespace/:name', (req, res) => {
          const { kind, namespace, name } = req.params;
          const entity = byKey.get(`${lower(kind)}:${lower(namespace)}/${lower(name)}`);
          if (!entity) {
            throw new NotFoundError(
              `No entity named '${name}' found, with kind '${kind}' in namespace '${namespace}'`,
            );
          }
          res.json(entity);
        });
        router.post('/entities/by-refs', (req, res) => {
          const refs = req.body?.entityRefs;
          if (!Array.isArray(refs)) throw new InputError('entityRefs must be an array');
          res.json({ items: refs.map(r => byKey.get(parseRef(r)) ?? null) });
        });
        router.get('/entities', (req, res) => {
          const raw = req.query.filter;
          const filters = raw === undefined ? [] : [].concat(raw);
          res.json(
            filters.length === 0 ? entities : entities.filter(e => filters.some(f => matchesFilter(e, f))),
          );
        });
        http.use(router);
        http.addAuthPolicy({ path: '/', allow: 'unauthenticated' });
      },
    });
  },
});

// ---------------------------------------------------------------------------------------

const backend = createSpecializedBackend({ defaultServiceFactories: factories });
backend.add(require('@backstage/plugin-kubernetes-backend').default);
backend.add(catalogPlugin);

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await Promise.race([backend.stop(), new Promise(r => setTimeout(r, 3000).unref())]);
  } finally {
    process.exit(code);
  }
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.on('close', () => stop(0));
process.stdin.resume();

try {
  await backend.start();
} catch (error) {
  process.stderr.write(`backend failed to start: ${error?.stack ?? error}\n`);
  process.exit(1);
}
process.stdout.write(`LISTENING ${httpServer.address().port}\n`);
