// User service module (placeholder until the user and order issue lands).
import { UserInternalService, UserService } from "../../gen/acme/user/v1/user_pb.js";
import type { ServiceDefinition } from "../../platform/service.js";

export const userService: ServiceDefinition = {
  name: "user",
  async prepare() {
    return {};
  },
  async create() {
    return {
      name: "user",
      services: [UserService, UserInternalService],
      routes(router) {
        router.service(UserService, {});
        router.service(UserInternalService, {});
      },
    };
  },
};
