// Row <-> message conversions for the user service.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSchema, type User } from "../../gen/acme/user/v1/user_pb.js";
import type { Profile } from "./store.js";

export function toUser(p: Profile): User {
  return create(UserSchema, {
    id: p.id,
    email: p.email,
    name: p.name,
    role: p.role,
    active: p.active,
    createdAt: timestampFromDate(p.created_at),
    updatedAt: timestampFromDate(p.updated_at),
  });
}
