// gRPC server reflection, v1 and v1alpha, answered from the generated
// descriptors (connect-node has no implementation of its own). Lets
// `buf curl --list-services` and grpcurl discover and describe the API.
import { toBinary, type DescFile, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Req = {
  host: string;
  messageRequest:
    | { case: "fileByFilename"; value: string }
    | { case: "fileContainingSymbol"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: "allExtensionNumbersOfType"; value: string }
    | { case: "listServices"; value: string }
    | { case: undefined; value?: undefined };
};

/** Answers one reflection request; `sent` holds files already sent on this stream. */
function answer(registry: FileRegistry, serviceNames: string[], req: Req, sent: Set<string>) {
  const files = (file: DescFile | undefined, what: string) => {
    if (!file) return error(5, `${what} not found`);
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, root: boolean) => {
      if (!root && sent.has(f.name)) return;
      sent.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      f.dependencies.forEach((d) => visit(d, false));
    };
    visit(file, true);
    return { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: out } };
  };
  const error = (errorCode: number, errorMessage: string) => ({
    case: "errorResponse" as const,
    value: { errorCode, errorMessage },
  });
  const m = req.messageRequest;
  switch (m.case) {
    case "listServices":
      return { case: "listServicesResponse" as const, value: { service: serviceNames.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(registry.getFile(m.value), `file ${m.value}`);
    case "fileContainingSymbol": {
      let desc = registry.get(m.value);
      if (!desc) {
        // A method or enum value: "pkg.Service.Method" -> look up the parent.
        const parent = m.value.slice(0, m.value.lastIndexOf("."));
        desc = registry.get(parent);
      }
      return files(desc?.file, `symbol ${m.value}`);
    }
    case "fileContainingExtension": {
      const ext = registry.getExtensionFor(
        registry.getMessage(m.value.containingType) ?? ({ typeName: m.value.containingType } as never),
        m.value.extensionNumber,
      );
      return files(ext?.file, `extension ${m.value.containingType}(${m.value.extensionNumber})`);
    }
    case "allExtensionNumbersOfType": {
      const msg = registry.getMessage(m.value);
      if (!msg) return error(5, `type ${m.value} not found`);
      const numbers: number[] = [];
      for (const d of registry) {
        if (d.kind === "extension" && d.extendee.typeName === m.value) numbers.push(d.number);
      }
      return { case: "allExtensionNumbersResponse" as const, value: { baseTypeName: m.value, extensionNumber: numbers } };
    }
    default:
      return error(3, "unknown reflection request");
  }
}

/** Register reflection v1 and v1alpha for the given service names. */
export function registerReflection(router: ConnectRouter, registry: FileRegistry, serviceNames: () => string[]): void {
  const impl = {
    async *serverReflectionInfo(requests: AsyncIterable<Req>) {
      const sent = new Set<string>();
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(registry, serviceNames(), req, sent) };
      }
    },
  };
  router.service(ReflectionV1, impl as never);
  router.service(ReflectionV1alpha, impl as never);
}
