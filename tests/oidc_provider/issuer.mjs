// A real OpenID provider for the oidc session: panva's oidc-provider issuing client-credentials
// JWT access tokens (RFC 9068) for one API. Usage: node issuer.mjs PORT KEYS.json AUDIENCE
// KEYS.json is a private JWK set; a key's `alg`, when present, is published with it.
// Each client stands for a case the tests need; the quirky ones change the token they get.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, keysFile, audience] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const OTHER_AUDIENCE = "https://another-api.example";

// client id: [signing algorithm, scopes, what changes in its tokens]
const CLIENTS = {
  "rs256": ["RS256", "read write"],
  "es256": ["ES256", "read write"],
  "ps256": ["PS256", "read write"],
  "reader": ["RS256", "read"],
  "typ-jwt": ["RS256", "read write", (token) => { token.header = { typ: "JWT" }; }],
  "no-exp": ["RS256", "read write", (token) => { delete token.payload.exp; }],
  "no-kid": ["RS256", "read write", (token) => { token.header = { kid: undefined }; }],
};

const provider = new Provider(issuer, {
  clients: Object.keys(CLIENTS).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
  })),
  jwks: JSON.parse(readFileSync(keysFile, "utf8")),
  scopes: ["read", "write"],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (resource !== audience && resource !== OTHER_AUDIENCE) {
          throw new Error(`unknown resource ${resource}`);
        }
        const [alg, scope] = CLIENTS[client.clientId];
        return {
          scope,
          audience: resource,
          accessTokenFormat: "jwt",
          accessTokenTTL: 600,
          jwt: { sign: { alg } },
        };
      },
    },
  },
  formats: {
    customizers: {
      jwt: (ctx, token, jwt) => {
        const change = CLIENTS[token.clientId][2];
        if (change) change(jwt);
      },
    },
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
