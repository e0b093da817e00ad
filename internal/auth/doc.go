// Package auth mints and checks Ordo's bearer tokens: compact JWS tokens
// (HS256) carrying a subject, a role, the time they were issued and an
// expiry, signed with the deployment's shared secret (an opaque string of
// at least [MinSecretLen] bytes). Verify also refuses a token that is not
// yet valid (nbf or iat more than [ClockSkew] ahead) or that lives longer
// than its role's maximum ([MaxLifetimes]).
package auth
