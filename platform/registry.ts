// A registry of generated file descriptors (with every import), the source
// for reflection, the embedded edge's transcoder and JSON codecs. Which files
// make up the product is the composition root's business (app/contract.ts).
import { create, createFileRegistry, type DescFile, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../gen/google/rpc/status_pb.js";
import { file_health_v1_health } from "../gen/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** What every server exposes besides its own contract: error details, health, reflection. */
export const platformFiles: readonly DescFile[] = [
  file_google_rpc_status,
  file_google_rpc_error_details,
  file_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
];

/** Files with all their imports, each once, imports first. */
export function withImports(files: readonly DescFile[]): DescFile[] {
  const out = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (out.has(f.name)) return;
    f.dependencies.forEach(visit);
    out.set(f.name, f);
  };
  files.forEach(visit);
  return [...out.values()];
}

/** A registry of `files`, the platform's files and all their imports. */
export function createRegistry(files: readonly DescFile[]): FileRegistry {
  return createFileRegistry(create(FileDescriptorSetSchema, { file: withImports([...files, ...platformFiles]).map((f) => f.proto) }));
}
