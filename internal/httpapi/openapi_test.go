package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPIMatchesTheRoutes keeps openapi.json true: the same operations
// as the route table, the same roles, and request and response schemas
// whose properties are exactly the wire types' JSON fields.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	paths := doc["paths"].(map[string]any)
	documented := map[string]map[string]any{}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = op.(map[string]any)
		}
	}
	s := &Server{}
	served := map[string]route{}
	for _, rt := range s.table() {
		served[rt.method+" "+rt.pattern] = rt
	}
	if got, want := keys(documented), keys(served); !reflect.DeepEqual(got, want) {
		t.Fatalf("documented operations %v\n served operations %v", got, want)
	}
	for name, rt := range served {
		op := documented[name]
		var roles []string
		for _, r := range rt.roles {
			roles = append(roles, string(r))
		}
		var docRoles []string
		if xr, ok := op["x-roles"].([]any); ok {
			for _, r := range xr {
				docRoles = append(docRoles, r.(string))
			}
		}
		sort.Strings(roles)
		sort.Strings(docRoles)
		if !reflect.DeepEqual(roles, docRoles) {
			t.Errorf("%s: roles %v, documented %v", name, roles, docRoles)
		}
		responses := op["responses"].(map[string]any)
		if _, ok := responses[fmt.Sprint(rt.status)]; !ok {
			t.Errorf("%s: success status %d is not documented", name, rt.status)
		}
		if rt.request != nil {
			body, ok := op["requestBody"].(map[string]any)
			if !ok {
				t.Errorf("%s: request body not documented", name)
			} else {
				compareSchema(t, doc, name+" request", schemaOf(body), rt.request)
			}
		}
		success := append([]int{rt.status}, rt.also...)
		for _, status := range success[1:] {
			if _, ok := responses[fmt.Sprint(status)]; !ok {
				t.Errorf("%s: success status %d is not documented", name, status)
			}
		}
		for code := range responses {
			if code[0] == '2' && !slices.Contains(success, atoi(code)) {
				t.Errorf("%s: documents %s, which the route never answers", name, code)
			}
		}
		if rt.response != nil {
			for _, status := range success {
				if r, ok := responses[fmt.Sprint(status)].(map[string]any); ok {
					compareSchema(t, doc, fmt.Sprint(name, " response ", status), schemaOf(resolve(doc, r)), rt.response)
				}
			}
		}
		for code, r := range responses {
			if code[0] == '4' || code[0] == '5' {
				schema := schemaOf(resolve(doc, r.(map[string]any)))
				if ref, _ := schema["$ref"].(string); ref != "#/components/schemas/Error" {
					t.Errorf("%s: %s does not use the Error schema", name, code)
				}
			}
		}
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func schemaOf(withContent map[string]any) map[string]any {
	content, _ := withContent["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	schema, _ := media["schema"].(map[string]any)
	return schema
}

// resolve follows a local $ref such as "#/components/schemas/SKU".
func resolve(doc map[string]any, v map[string]any) map[string]any {
	ref, ok := v["$ref"].(string)
	if !ok {
		return v
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		cur = cur.(map[string]any)[part]
	}
	return cur.(map[string]any)
}

// compareSchema checks that a schema's properties are the JSON fields of
// the Go value, recursively for nested structs.
func compareSchema(t *testing.T, doc map[string]any, what string, schema map[string]any, v any) {
	t.Helper()
	compareType(t, doc, what, schema, reflect.TypeOf(v))
}

func compareType(t *testing.T, doc map[string]any, what string, schema map[string]any, typ reflect.Type) {
	t.Helper()
	if schema == nil {
		t.Errorf("%s: no schema", what)
		return
	}
	schema = resolve(doc, schema)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Slice:
		items, _ := schema["items"].(map[string]any)
		compareType(t, doc, what+"[]", items, typ.Elem())
		return
	case reflect.Struct:
	default:
		return
	}
	props, _ := schema["properties"].(map[string]any)
	fields := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	if got, want := keys(props), keys(fields); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: documented properties %v, wire fields %v", what, got, want)
		return
	}
	for name, ft := range fields {
		compareType(t, doc, what+"."+name, props[name].(map[string]any), ft)
	}
}

// TestOpenAPIDocumentsTheErrorBody: the Error schema's error object has
// exactly errorDetail's fields, and every operation that can fail with
// a 503 documents the 500 of a fault too.
func TestOpenAPIDocumentsTheErrorBody(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	errSchema := doc["components"].(map[string]any)["schemas"].(map[string]any)["Error"].(map[string]any)
	detail := errSchema["properties"].(map[string]any)["error"].(map[string]any)
	compareSchema(t, doc, "Error.error", detail, errorDetail{})
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			responses := op.(map[string]any)["responses"].(map[string]any)
			_, has503 := responses["503"]
			_, has500 := responses["500"]
			if has503 && !has500 && path != "/readyz" {
				t.Errorf("%s %s: documents 503 but not 500 internal", strings.ToUpper(method), path)
			}
		}
	}
}
