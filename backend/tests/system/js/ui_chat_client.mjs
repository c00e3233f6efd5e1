// The Vercel AI SDK's own client against the running app, one action per run:
//   node ui_chat_client.mjs ask    BASE CHAT_ID QUESTION [HISTORY_JSON]
//   node ui_chat_client.mjs leave  BASE CHAT_ID QUESTION CHARS   (abort after CHARS of answer)
//   node ui_chat_client.mjs resume BASE CHAT_ID
//   node ui_chat_client.mjs reload BASE CHAT_ID QUESTION CHARS [RESUME_BASE]
//     (leave, then re-attach at once as a reloaded page's useChat({resume: true}) does,
//     through a new transport, to RESUME_BASE: another instance, or BASE)
// It prints one JSON line: what useChat would hold (the answer's text parts, metadata and
// the errors it was told of). tests/system/test_ai_sdk.py scripts the model and checks.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [action, base, chatId, question, extra, resumeBase] = process.argv.slice(2);
const transportTo = (server) => new DefaultChatTransport({ api: `${server}/api/ui/chat` });
const transport = transportTo(base);

function userMessage(text, id = "u-last") {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

function textOf(message) {
  if (!message) return "";
  return message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

async function read(stream, { stopAfter = Infinity, controller = null } = {}) {
  const errors = [];
  let last;
  for await (const message of readUIMessageStream({ stream, onError: (e) => errors.push(e.message) })) {
    last = message;
    if (textOf(message).length >= stopAfter) {
      controller?.abort();
      break;
    }
  }
  return { text: textOf(last), metadata: last?.metadata ?? null, errors };
}

async function send(text, history, options = {}) {
  const controller = new AbortController();
  const stream = await transport.sendMessages({
    chatId,
    messages: [...history, userMessage(text)],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: controller.signal,
  });
  return read(stream, { ...options, controller });
}

async function resume(server) {
  const stream = await transportTo(server).reconnectToStream({ chatId });
  return stream === null ? { resumed: false } : { resumed: true, ...(await read(stream)) };
}

async function main() {
  try {
    if (action === "ask") return await send(question, extra ? JSON.parse(extra) : []);
    if (action === "leave") return await send(question, [], { stopAfter: Number(extra) });
    if (action === "resume") return await resume(base);
    if (action === "reload") {
      const left = await send(question, [], { stopAfter: Number(extra) });
      return { left: left.text, ...(await resume(resumeBase ?? base)) };
    }
    throw new Error(`unknown action ${action}`);
  } catch (error) {
    return { thrown: error.message };
  }
}

process.stdout.write(JSON.stringify(await main()) + "\n");
