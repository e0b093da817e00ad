// Package auth mints and checks Ordo's bearer tokens: compact JWS tokens
// (HS256) carrying a subject, a role and an expiry, signed with the
// deployment's shared secret. The secret is an opaque string of at least
// [MinSecretLen] bytes.
package auth
