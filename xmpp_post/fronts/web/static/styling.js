// XEP-0393 Message Styling, shown as XMPP clients show it: built from DOM nodes, never
// from HTML text, so a message holding markup shows that markup as text.
//
// Blocks: a preformatted block runs from a line starting with ``` to a line that is only
// ``` (or the end of its parent); a quotation is a run of lines starting with ">" (one
// ">" and one space are removed, and the rest is styled again, so quotations nest);
// every other line is plain. Spans, within one line: *strong*, _emphasis_, ~strike~ and
// `preformatted` (whose content is not styled further). An opening directive is at the
// start of the line or after white space and is not followed by white space; it is
// closed by the first same directive that is not preceded by white space, with at
// least one character between. Directives stay visible, dimmed. Web links (http and
// https) in plain text become links. Work is bounded: each line is scanned once per
// directive kind, and each opening finds its closing directive by binary search.

const SPANS = { "*": "strong", "_": "em", "~": "s", "`": "code" };
const URL = /https?:\/\/[^\s<>"]+/g;
const TRAILING = /[.,;:!?'")\]]+$/;

function isSpace(ch) {
  return ch === undefined || /\s/.test(ch);
}

function directive(doc, text) {
  const span = doc.createElement("span");
  span.className = "directive";
  span.textContent = text;
  return span;
}

// Text with its web links made into links (href only for http and https).
function linked(doc, text, into) {
  let last = 0;
  for (const found of text.matchAll(URL)) {
    let url = found[0];
    const tail = url.match(TRAILING);
    if (tail) url = url.slice(0, url.length - tail[0].length);
    if (url.length <= "https://".length) continue;
    if (found.index > last) into.append(doc.createTextNode(text.slice(last, found.index)));
    const link = doc.createElement("a");
    link.href = url;
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    link.textContent = url;
    into.append(link);
    last = found.index + url.length;
  }
  if (last < text.length) into.append(doc.createTextNode(text.slice(last)));
}

// The positions of each kind's possible closing directives in a line, in order.
function closers(line) {
  const found = { "*": [], "_": [], "~": [], "`": [] };
  for (let i = 1; i < line.length; i++) {
    const list = found[line[i]];
    if (list !== undefined && !isSpace(line[i - 1])) list.push(i);
  }
  return found;
}

// The first position in the sorted ``list`` that is at least ``from``, or -1.
function firstFrom(list, from) {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (list[mid] < from) low = mid + 1; else high = mid;
  }
  return low < list.length ? list[low] : -1;
}

// The spans of line[start, end) appended to ``into``; ``open`` holds the kinds already
// open around this range (a kind does not nest in itself).
function spans(doc, line, start, end, ends, open, into) {
  let plain = start;
  let i = start;
  while (i < end) {
    const ch = line[i];
    const tag = SPANS[ch];
    if (tag !== undefined && !open.has(ch) && (i === start || isSpace(line[i - 1]))
        && i + 1 < end && !isSpace(line[i + 1])) {
      const close = firstFrom(ends[ch], i + 2);
      if (close !== -1 && close < end) {
        if (i > plain) linked(doc, line.slice(plain, i), into);
        const element = doc.createElement(tag);
        element.append(directive(doc, ch));
        if (ch === "`") {
          element.append(doc.createTextNode(line.slice(i + 1, close)));
        } else {
          spans(doc, line, i + 1, close, ends, new Set([...open, ch]), element);
        }
        element.append(directive(doc, ch));
        into.append(element);
        i = close + 1;
        plain = i;
        continue;
      }
    }
    i++;
  }
  if (end > plain) linked(doc, line.slice(plain, end), into);
}

function plainLine(doc, line, into) {
  spans(doc, line, 0, line.length, closers(line), new Set(), into);
}

// The blocks of ``lines`` appended to ``into``.
function blocks(doc, lines, into) {
  let i = 0;
  let paragraph = null;
  const endParagraph = () => { paragraph = null; };
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      endParagraph();
      const pre = doc.createElement("pre");
      pre.append(directive(doc, line), doc.createTextNode("\n"));
      let j = i + 1;
      const body = [];
      while (j < lines.length && lines[j] !== "```") body.push(lines[j++]);
      pre.append(doc.createTextNode(body.join("\n")));
      if (j < lines.length) pre.append(doc.createTextNode("\n"), directive(doc, "```"));
      into.append(pre);
      i = j + 1;
      continue;
    }
    if (line.startsWith(">")) {
      endParagraph();
      const quoted = [];
      while (i < lines.length && lines[i].startsWith(">")) {
        const rest = lines[i].slice(1);
        quoted.push(rest.startsWith(" ") ? rest.slice(1) : rest);
        i++;
      }
      const quote = doc.createElement("blockquote");
      blocks(doc, quoted, quote);
      into.append(quote);
      continue;
    }
    if (paragraph === null) {
      paragraph = doc.createElement("p");
      into.append(paragraph);
    } else {
      paragraph.append(doc.createElement("br"));
    }
    plainLine(doc, line, paragraph);
    i++;
  }
}

// ``text`` styled as XEP-0393 says, as a fragment of DOM nodes.
export function renderStyled(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  blocks(doc, String(text).split(/\r\n|\n/), fragment);
  return fragment;
}
