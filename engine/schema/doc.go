// Package schema compiles the JSON Schemas of connectors (parametersSchema,
// connectionParametersSchema, credentialsSchema, an event's schema) with
// santhosh-tekuri/jsonschema and validates plain values against them, returning one
// violation per problem with a dotted field path ("parameters.items[0].id").
//
// Schemas use draft 2020-12 unless they say otherwise with $schema; format is asserted;
// $ref may point only inside the same schema (nothing is loaded from files or the network).
package schema
