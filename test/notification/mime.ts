// Just enough MIME to assert on a raw message as nodemailer writes it: the
// headers (unfolded, encoded words decoded), and the text/plain and text/html
// parts of a multipart/alternative body (quoted-printable or base64 decoded).

export interface ParsedMail {
  header(name: string): string | undefined;
  contentType: string;
  text: string;
  html: string;
}

interface Part {
  headers: Map<string, string>;
  body: string;
}

function decodeWords(v: string): string {
  return v.replace(/=\?utf-8\?([qb])\?([^?]*)\?=/gi, (_m, enc: string, data: string) =>
    enc.toLowerCase() === "b"
      ? Buffer.from(data, "base64").toString("utf8")
      : Buffer.from(data.replace(/_/g, " ").replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8"),
  );
}

function splitPart(raw: string): Part {
  const text = raw.replace(/\r\n/g, "\n");
  const end = text.indexOf("\n\n");
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? "" : text.slice(end + 2);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, " ").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), decodeWords(line.slice(i + 1).trim()));
  }
  return { headers, body };
}

function decodeBody(p: Part): string {
  const enc = (p.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  if (enc === "base64") return Buffer.from(p.body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (enc === "quoted-printable") {
    const bytes = p.body.replace(/=\n/g, "").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, "latin1").toString("utf8");
  }
  return p.body;
}

export function parseMime(raw: string): ParsedMail {
  const top = splitPart(raw);
  const contentType = top.headers.get("content-type") ?? "";
  const parts: Part[] = [];
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (boundary) {
    const sections = top.body.split(`--${boundary}`);
    for (const s of sections.slice(1)) {
      if (s.startsWith("--")) break;
      parts.push(splitPart(s.replace(/^\n/, "")));
    }
  } else {
    parts.push(top);
  }
  const body = (type: string) => {
    const p = parts.find((x) => (x.headers.get("content-type") ?? "").toLowerCase().startsWith(type));
    return p ? decodeBody(p).replace(/\n$/, "") : "";
  };
  return { header: (name) => top.headers.get(name.toLowerCase()), contentType, text: body("text/plain"), html: body("text/html") };
}
