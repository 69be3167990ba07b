// Every generated file descriptor of the product, in one registry: the source
// for reflection, policy lookup, the embedded edge's transcoder and JSON codecs.
import { create, createFileRegistry, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { file_acme_auth_v1_auth } from "../gen/acme/auth/v1/auth_pb.js";
import { file_acme_order_v1_order } from "../gen/acme/order/v1/order_pb.js";
import { file_acme_user_v1_user } from "../gen/acme/user/v1/user_pb.js";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../gen/google/rpc/status_pb.js";
import { file_health_v1_health } from "../gen/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The product's own contract files (acme.*). */
export const productFiles: readonly DescFile[] = [
  file_acme_auth_v1_auth,
  file_acme_user_v1_user,
  file_acme_order_v1_order,
];

/** Everything a server exposes through reflection. */
export const allFiles: readonly DescFile[] = [
  ...productFiles,
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

/** A registry of every file above and their imports. */
export const registry = createFileRegistry(
  create(FileDescriptorSetSchema, { file: withImports(allFiles).map((f) => f.proto) }),
);

/** All services declared in the product's contract files. */
export function productServices(): DescService[] {
  return productFiles.flatMap((f) => f.services);
}
