// Proto comments from a descriptor set's source_code_info, to become descriptions.
import type { DescFile } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";

/** Leading comments by fully qualified element name, from source_code_info. */
export function commentsOf(files: readonly DescFile[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of files) {
    const proto: FileDescriptorProto = file.proto;
    const byPath = new Map<string, string>();
    for (const loc of proto.sourceCodeInfo?.location ?? []) {
      const text = loc.leadingComments
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => !l.startsWith("buf:lint:"))
        .join("\n")
        .trim();
      if (text) byPath.set(loc.path.join("."), text);
    }
    const pkg = proto.package ? `${proto.package}.` : "";
    const visitMessage = (m: FileDescriptorProto["messageType"][number], scope: string, path: number[]) => {
      const name = `${scope}${m.name}`;
      const put = (key: string, p: number[]) => byPath.has(p.join(".")) && out.set(key, byPath.get(p.join("."))!);
      put(name, path);
      m.field.forEach((f, i) => put(`${name}.${f.name}`, [...path, 2, i]));
      m.nestedType.forEach((n, i) => visitMessage(n, `${name}.`, [...path, 3, i]));
      m.enumType.forEach((e, i) => visitEnum(e, `${name}.`, [...path, 4, i]));
    };
    const visitEnum = (e: FileDescriptorProto["enumType"][number], scope: string, path: number[]) => {
      const name = `${scope}${e.name}`;
      if (byPath.has(path.join("."))) out.set(name, byPath.get(path.join("."))!);
      // Enum values share their enum's scope (C++ rules); key them under the enum.
      e.value.forEach((v, i) => {
        const c = byPath.get([...path, 2, i].join("."));
        if (c) out.set(`${name}.${v.name}`, c);
      });
    };
    proto.messageType.forEach((m, i) => visitMessage(m, pkg, [4, i]));
    proto.enumType.forEach((e, i) => visitEnum(e, pkg, [5, i]));
    proto.service.forEach((s, i) => {
      const name = `${pkg}${s.name}`;
      const c = byPath.get([6, i].join("."));
      if (c) out.set(name, c);
      s.method.forEach((m, j) => {
        const mc = byPath.get([6, i, 2, j].join("."));
        if (mc) out.set(`${name}.${m.name}`, mc);
      });
    });
  }
  return out;
}
