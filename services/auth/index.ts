// Auth service module (placeholder until the auth issue lands).
import { AuthInternalService, AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import type { ServiceDefinition } from "../../platform/service.js";

export const authService: ServiceDefinition = {
  name: "auth",
  async prepare() {
    return {};
  },
  async create() {
    return {
      name: "auth",
      services: [AuthService, AuthInternalService],
      routes(router) {
        router.service(AuthService, {});
        router.service(AuthInternalService, {});
      },
    };
  },
};
