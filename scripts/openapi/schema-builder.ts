// Component schemas of the messages and enums an operation uses, built on
// demand: a message is a $ref to its schema, the schema is made once (flush).
import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";
import { mapKeySchema, scalarSchema, wellKnown, type Schema } from "./proto-json.js";

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

export class SchemaBuilder {
  readonly schemas = new Map<string, Schema>();
  private readonly pending: (DescMessage | DescEnum)[] = [];

  constructor(private readonly comments: Map<string, string>) {}

  describe(schema: Schema, key: string): Schema {
    const c = this.comments.get(key);
    return c ? { ...schema, description: c } : schema;
  }

  /** Schema of a message as a value: well-known types inline, others by $ref. */
  messageSchema(m: DescMessage): Schema {
    const wkt = wellKnown(m.typeName);
    if (wkt) return wkt;
    if (m.typeName === "google.protobuf.Any") return this.any();
    this.need(m);
    return ref(m.typeName);
  }

  enumSchema(e: DescEnum): Schema {
    if (e.typeName === "google.protobuf.NullValue") return { type: "null" };
    this.need(e);
    return ref(e.typeName);
  }

  private any(): Schema {
    if (!this.schemas.has("google.protobuf.Any")) {
      this.schemas.set("google.protobuf.Any", {
        type: "object",
        description:
          "A message of any type: \"@type\" names it (type.googleapis.com/<full name>), the other properties are its JSON fields. " +
          'Error details are e.g. google.rpc.BadRequest {"fieldViolations": [{"field": "quantity", "description": "..."}]}.',
        required: ["@type"],
        properties: { "@type": { type: "string", examples: ["type.googleapis.com/google.rpc.BadRequest"] } },
        additionalProperties: true,
      });
    }
    return ref("google.protobuf.Any");
  }

  private need(d: DescMessage | DescEnum) {
    if (!this.schemas.has(d.typeName)) {
      this.schemas.set(d.typeName, {}); // placeholder against cycles
      this.pending.push(d);
    }
  }

  /** Builds every schema referenced so far (and what they reference). */
  flush() {
    for (let d = this.pending.shift(); d; d = this.pending.shift()) {
      this.schemas.set(d.typeName, d.kind === "message" ? this.objectSchema(d) : this.enumObject(d));
    }
  }

  private enumObject(e: DescEnum): Schema {
    const lines = e.values
      .filter((v) => this.comments.has(`${e.typeName}.${v.name}`))
      .map((v) => `- ${v.name}: ${this.comments.get(`${e.typeName}.${v.name}`)!.replace(/\n/g, " ")}`);
    const base = this.comments.get(e.typeName);
    const description = [base, ...lines].filter(Boolean).join("\n");
    return {
      type: "string",
      enum: e.values.map((v) => v.name),
      ...(description ? { description } : {}),
    };
  }

  objectSchema(m: DescMessage, omit: ReadonlySet<string> = new Set()): Schema {
    const properties: Schema = {};
    for (const f of m.fields) {
      if (omit.has(f.name)) continue;
      properties[f.jsonName] = this.fieldSchema(f);
    }
    const oneofs = m.oneofs
      .filter((o) => !o.fields.every((f) => f.proto.proto3Optional))
      .map((o) => `At most one of ${o.fields.map((f) => f.jsonName).join(", ")} (oneof ${o.name}).`);
    const description = [this.comments.get(m.typeName), ...oneofs].filter(Boolean).join("\n");
    return {
      type: "object",
      ...(description ? { description } : {}),
      properties,
    };
  }

  fieldSchema(f: DescField): Schema {
    let s: Schema;
    switch (f.fieldKind) {
      case "scalar":
        s = scalarSchema(f.scalar);
        break;
      case "enum":
        s = this.enumSchema(f.enum);
        break;
      case "message":
        s = this.messageSchema(f.message);
        break;
      case "list":
        s = {
          type: "array",
          items:
            f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? this.enumSchema(f.enum) : this.messageSchema(f.message),
        };
        break;
      case "map":
        s = {
          type: "object",
          propertyNames: mapKeySchema(f.mapKey),
          additionalProperties:
            f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? this.enumSchema(f.enum) : this.messageSchema(f.message),
        };
        break;
    }
    if (f.deprecated) s = { ...s, deprecated: true };
    return this.describe(s, `${f.parent.typeName}.${f.name}`);
  }
}
