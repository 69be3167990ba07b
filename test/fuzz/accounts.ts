// Accounts for the fuzzers: registration answers the same for a new and a taken
// email and gives no tokens (issue 15), so a fuzzer's user registers, then logs in.
import { strict as assert } from "node:assert";
import { call, login, PASSWORD, uniqueEmail, type Target, type User } from "../edge/conformance/target.js";

export async function signedInUser(t: Target, tag = "fuzz"): Promise<User> {
  const email = uniqueEmail(tag);
  const r = await call(t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Fuzz" } });
  assert.ok(r.status >= 200 && r.status < 300, `register: ${r.status} ${r.text}`);
  return login(t, email, PASSWORD);
}
