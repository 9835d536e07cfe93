// Uses the official SDKs (OpenAI, Anthropic, Google Gen AI) exactly as an agent would: no base URL or key in
// code, only what `tokfence exec` put in the environment. Prints one JSON
// line of results for the Go test to check.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";

const out = {};
const openai = new OpenAI();
const chat = await openai.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "say hello" }],
});
out.chat = chat.choices[0].message.content;

const stream = await openai.chat.completions.create({
  model: "gpt-4o-mini",
  stream: true,
  messages: [{ role: "user", content: "count" }],
});
let streamed = "";
let chunks = 0;
for await (const part of stream) {
  streamed += part.choices[0]?.delta?.content ?? "";
  chunks++;
}
out.stream = streamed;
out.chunks = chunks;

const anthropic = new Anthropic();
const msg = await anthropic.messages.create({
  model: "claude-3-5-haiku-latest",
  max_tokens: 32,
  messages: [{ role: "user", content: "say hello" }],
});
out.messages = msg.content[0].text;

const mstream = await anthropic.messages.create({
  model: "claude-3-5-haiku-latest",
  max_tokens: 32,
  stream: true,
  messages: [{ role: "user", content: "count" }],
});
let mstreamed = "";
for await (const ev of mstream) {
  if (ev.type === "content_block_delta") mstreamed += ev.delta.text;
}
out.messagesStream = mstreamed;

// @google/genai reads GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL itself.
const genai = new GoogleGenAI({});
const gen = await genai.models.generateContent({ model: "gemini-2.5-flash", contents: "say hello" });
out.generate = gen.text;
out.tokenSeen = (process.env.OPENAI_API_KEY || "").length > 0;
console.log(JSON.stringify(out));
