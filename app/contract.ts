// The product's contract: its .proto files (generated into gen/), the
// registry built from them and the access policy they declare. Everything
// that serves, routes or checks the product's RPCs takes these from here.
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { file_acme_auth_v1_auth } from "../gen/acme/auth/v1/auth_pb.js";
import { file_acme_catalogue_v1_catalogue } from "../gen/acme/catalogue/v1/catalogue_pb.js";
import { file_acme_notification_v1_notification } from "../gen/acme/notification/v1/notification_pb.js";
import { file_acme_order_v1_order } from "../gen/acme/order/v1/order_pb.js";
import { file_acme_user_v1_user } from "../gen/acme/user/v1/user_pb.js";
import { policyTable } from "../platform/policy.js";
import { createRegistry } from "../platform/registry.js";

/** The product's own contract files (acme.*). */
export const productFiles: readonly DescFile[] = [
  file_acme_auth_v1_auth,
  file_acme_user_v1_user,
  file_acme_order_v1_order,
  file_acme_notification_v1_notification,
  file_acme_catalogue_v1_catalogue,
];

/** Every file a server of the product exposes through reflection, with imports. */
export const registry = createRegistry(productFiles);

/** All services declared in the product's contract files. */
export const productServices: readonly DescService[] = productFiles.flatMap((f) => f.services);

/** The policy of every product RPC (proto/acme/edge/v1/policy.proto options). */
export const policies = policyTable(productServices);
