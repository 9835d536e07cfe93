// Provokes one kind of Tokfence refusal (argv[2]: scope, limit, spend or
// rate) through each provider's official SDK, set up only by the env
// `tokfence exec` gives it, and prints one JSON line: for each call, the
// error the SDK threw, the message it exposes and how many HTTP attempts
// it made. A fetch wrapper (an option each SDK takes) counts the attempts;
// nothing else is changed. openai and @anthropic-ai/sdk keep their default
// retries (2, on 408/409/429/5xx unless x-should-retry says otherwise).
// @google/genai retries nothing by default, so it is given retryOptions:
// a status it would retry (408, 429, 5xx) then shows as extra attempts.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";

const GENAI_RETRY = { attempts: 3 };

// Each SDK: how to build a client (key: a key to use instead of the env's;
// retry: false turns retries off) and how to make one call (model: a model
// to name instead of the usual one).
const sdks = {
  openai: {
    token: () => process.env.OPENAI_API_KEY,
    unpriced: "gpt-99-nowhere",
    client: (fetch, { key, retry = true } = {}) =>
      new OpenAI({ fetch, ...(key && { apiKey: key }), ...(!retry && { maxRetries: 0 }) }),
    call: (c, model = "gpt-4o-mini") =>
      c.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }),
    // What openai shows: err.error is the body's "error" member.
    describe: (err) => ({
      message: err.error?.message ?? err.message,
      type: err.error?.type,
      code: err.code,
      shouldRetry: err.headers?.get("x-should-retry"),
      retryAfterMs: err.headers?.get("retry-after-ms"),
    }),
  },
  anthropic: {
    token: () => process.env.ANTHROPIC_API_KEY,
    unpriced: "claude-99-nowhere",
    // A key passed in code is the client's only credential (the env's
    // ANTHROPIC_AUTH_TOKEN is then not sent beside it).
    client: (fetch, { key, retry = true } = {}) =>
      new Anthropic({ fetch, ...(key && { apiKey: key }), ...(!retry && { maxRetries: 0 }) }),
    call: (c, model = "claude-3-5-haiku-latest") =>
      c.messages.create({ model, max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
    // What @anthropic-ai/sdk shows: err.error is the whole body
    // {"type":"error","error":{...}}; err.message is "STATUS <that JSON>".
    describe: (err) => ({
      message: err.error?.error?.message,
      type: err.error?.error?.type,
      shouldRetry: err.headers?.get("x-should-retry"),
      retryAfterMs: err.headers?.get("retry-after-ms"),
    }),
  },
  genai: {
    token: () => process.env.GEMINI_API_KEY,
    unpriced: "gemini-99-nowhere",
    // httpOptions without baseUrl: the SDK still reads
    // GOOGLE_GEMINI_BASE_URL from the env itself.
    client: (fetch, { key, retry = true } = {}) =>
      new GoogleGenAI({ ...(key && { apiKey: key }), httpOptions: { fetch, ...(retry && { retryOptions: GENAI_RETRY }) } }),
    call: (c, model = "gemini-2.5-flash") => c.models.generateContent({ model, contents: "hi" }),
    // What @google/genai shows: err.message is the body as JSON text.
    describe: (err) => {
      let body = {};
      try {
        body = JSON.parse(err.message);
      } catch {}
      return { message: body.error?.message, type: body.error?.status };
    },
  },
};

// attempt makes one call through a counting fetch and returns what became
// of it.
async function attempt(name, kind, opts = {}, model) {
  const sdk = sdks[name];
  let attempts = 0;
  const counting = (...args) => {
    attempts++;
    return fetch(...args);
  };
  const out = { sdk: name, kind };
  const start = performance.now();
  try {
    await sdk.call(sdk.client(counting, opts), model);
    out.ok = true;
  } catch (err) {
    Object.assign(out, { class: err.constructor.name, status: err.status, sdkMessage: err.message }, sdk.describe(err));
  }
  out.attempts = attempts;
  out.ms = Math.round(performance.now() - start);
  return out;
}

// forged is the session's token with its signature's end changed.
const forged = (tok) => tok.slice(0, -4) + (tok.endsWith("AAAA") ? "BBBB" : "AAAA");

const modes = {
  async scope(name) {
    return [await attempt(name, "scope"), await attempt(name, "forged", { key: forged(sdks[name].token()) })];
  },
  async limit(name) {
    return [await attempt(name, "limit")];
  },
  async spend(name) {
    return [await attempt(name, "spend", {}, sdks[name].unpriced)];
  },
  // rate: calls without retries until one is refused (the session's
  // burst is 1: the first may get through), then once with the SDK's
  // retries, which should wait out the 429 and get through.
  async rate(name) {
    const out = [];
    for (let i = 0; i < 5; i++) {
      const r = await attempt(name, "rate", { retry: false });
      if (r.ok) r.kind = "rate-burst";
      out.push(r);
      if (!r.ok) break;
    }
    out.push(await attempt(name, "rate-retried"));
    return out;
  },
};

const mode = modes[process.argv[2]];
if (!mode) {
  console.error(`usage: node errors.mjs ${Object.keys(modes).join("|")}`);
  process.exit(2);
}
const results = [];
if (process.argv[2] === "limit") {
  results.push(await attempt("openai", "limit-first")); // the session's one request
}
for (const name of Object.keys(sdks)) {
  results.push(...(await mode(name)));
}
console.log(JSON.stringify(results));
