package httpapi

import _ "embed"

// openapiDoc is the OpenAPI 3 description served at /v1/openapi.json. A
// test checks it against the route table and the wire types.
//
//go:embed openapi.json
var openapiDoc []byte
