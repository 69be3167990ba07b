// The proto3 JSON mapping as JSON Schema: scalars, map keys and the well-known
// types with a special JSON form.
import { ScalarType } from "@bufbuild/protobuf";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Schema = { [k: string]: Json };

export function scalarSchema(t: ScalarType): Schema {
  switch (t) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    // proto3 JSON writes 64-bit integers as strings (readers also accept numbers).
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
  }
}

export function mapKeySchema(t: ScalarType): Schema {
  const s = scalarSchema(t);
  if (s.type === "integer") return { type: "string", pattern: t === ScalarType.UINT32 || t === ScalarType.FIXED32 ? "^[0-9]+$" : "^-?[0-9]+$" };
  if (s.type === "boolean") return { type: "string", enum: ["true", "false"] };
  return { type: "string" };
}

/** Well-known types with a special JSON form, inlined where used. */
export function wellKnown(typeName: string): Schema | undefined {
  const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, "null"] });
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", description: 'Seconds with an "s" suffix, e.g. "1.5s".' };
    case "google.protobuf.FieldMask":
      return {
        type: "string",
        description: 'Comma-separated field paths in lowerCamelCase, e.g. "name,role".',
      };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array", items: {} };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
      return nullable({ type: "number" });
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
      return nullable({ type: "integer" });
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
      return nullable({ type: "string", format: "int64" });
    case "google.protobuf.BoolValue":
      return nullable({ type: "boolean" });
    case "google.protobuf.StringValue":
      return nullable({ type: "string" });
    case "google.protobuf.BytesValue":
      return nullable({ type: "string", contentEncoding: "base64" });
  }
  return undefined;
}
