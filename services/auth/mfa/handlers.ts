// AuthService handlers of the second factor: TOTP enrolment, recovery codes,
// the second login step, the admin reset. (Being written: issue 18.)
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthService } from "../../../gen/acme/auth/v1/auth_pb.js";

type SecondFactorMethods =
  | "completeLogin" | "getSecondFactor" | "startTotpEnrollment" | "confirmTotp" | "disableTotp" | "regenerateRecoveryCodes" | "resetSecondFactor";

const todo = (): never => {
  throw new ConnectError("not implemented", Code.Unimplemented);
};

export function secondFactorHandlers(): Pick<ServiceImpl<typeof AuthService>, SecondFactorMethods> {
  return {
    completeLogin: todo, getSecondFactor: todo, startTotpEnrollment: todo, confirmTotp: todo, disableTotp: todo,
    regenerateRecoveryCodes: todo, resetSecondFactor: todo,
  };
}
