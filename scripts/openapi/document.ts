// The whole document from a descriptor set: info, tags, paths and components.
import { createFileRegistry, fromBinary, getOption, hasOption, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { internal } from "../../gen/acme/edge/v1/policy_pb.js";
import { http } from "../../gen/google/api/annotations_pb.js";
import { commentsOf } from "./comments.js";
import { components } from "./components.js";
import { operation } from "./operation.js";
import type { Json, Schema } from "./proto-json.js";
import { SchemaBuilder } from "./schema-builder.js";

export interface OpenApiOptions {
  title?: string;
  version?: string;
}

/** Builds the OpenAPI document from a serialized FileDescriptorSet (with source info). */
export function openApiFromDescriptorSet(bytes: Uint8Array, opts: OpenApiOptions = {}): Schema {
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  const registry = createFileRegistry(set);
  const files = [...registry.files].sort((a, b) => a.name.localeCompare(b.name));
  const comments = commentsOf(files);
  const b = new SchemaBuilder(comments);

  const status = registry.getMessage("google.rpc.Status");
  if (!status) throw new Error("google/rpc/status.proto must be in the descriptor set (the error schema)");
  b.messageSchema(status);

  const services: DescService[] = files
    .filter((f) => f.proto.package.startsWith("acme."))
    .flatMap((f) => f.services)
    .filter((s) => !getOption(s, internal));

  const paths = new Map<string, Schema>();
  const operationIds = new Set<string>();
  const tags: Json[] = [];
  for (const service of services) {
    tags.push(b.describe({ name: service.name }, service.typeName));
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const primary = getOption(method, http);
      [primary, ...primary.additionalBindings].forEach((rule, i) => {
        const { verb, path, op } = operation(b, service, method, rule, i);
        if (operationIds.has(op.operationId as string)) throw new Error(`duplicate operationId ${op.operationId}`);
        operationIds.add(op.operationId as string);
        const item = paths.get(path) ?? {};
        if (item[verb]) throw new Error(`two RPCs bind ${verb.toUpperCase()} ${path}`);
        item[verb] = op;
        paths.set(path, item);
      });
    }
  }
  b.flush();
  b.schemas.set("google.rpc.Status", {
    ...b.schemas.get("google.rpc.Status")!,
    description:
      "Every error: code is the gRPC status code (google.rpc.Code: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, " +
      "16 UNAUTHENTICATED, ...), message is for developers, details carry typed error details such as google.rpc.BadRequest.",
  });
  const schemas: Schema = {};
  for (const name of [...b.schemas.keys()].sort()) schemas[name] = b.schemas.get(name)!;
  return {
    openapi: "3.1.0",
    info: {
      title: opts.title ?? "acme API",
      version: opts.version ?? "v1",
      description:
        "REST/JSON surface of the acme services (auth, user, order), transcoded to gRPC by the edge. " +
        "Generated from the Protobuf contract (proto/) by scripts/openapi.ts: do not edit. " +
        "Field names are lowerCamelCase (proto3 JSON mapping); 64-bit integers are strings; enums are strings. " +
        "The same RPCs are served over gRPC, gRPC-Web and Connect on the same port (docs/clients.md).",
    },
    tags,
    paths: Object.fromEntries(paths),
    components: components(schemas),
  };
}
