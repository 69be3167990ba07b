// AuthService handlers of the mailed-token flows: email verification, email
// change, password reset. (Being written: issue 18.)
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";

type EmailMethods = "verifyEmail" | "resendVerification" | "changeEmail" | "requestPasswordReset" | "resetPassword";

const todo = (): never => {
  throw new ConnectError("not implemented", Code.Unimplemented);
};

export function emailHandlers(): Pick<ServiceImpl<typeof AuthService>, EmailMethods> {
  return { verifyEmail: todo, resendVerification: todo, changeEmail: todo, requestPasswordReset: todo, resetPassword: todo };
}
