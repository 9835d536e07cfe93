// The Vercel AI SDK's Anthropic and OpenAI providers, set up by nothing but
// the env `tokfence exec` gives them, beside the official Anthropic SDK in
// the same process. Both Anthropic clients read the same
// ANTHROPIC_BASE_URL (which has no /v1): @ai-sdk/anthropic appends
// /messages to it, the official SDK /v1/messages. Prints one JSON line.
import { generateText } from "ai";
import { anthropic } from "@ai-sdk/anthropic";
import { openai } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";

const prompt = "say hello";
const out = {};
out.anthropic = (await generateText({ model: anthropic("claude-3-5-haiku-latest"), prompt })).text;
out.openaiChat = (await generateText({ model: openai.chat("gpt-4o-mini"), prompt })).text;
out.openaiResponses = (await generateText({ model: openai("gpt-4o-mini"), prompt })).text;
const msg = await new Anthropic().messages.create({
  model: "claude-3-5-haiku-latest",
  max_tokens: 32,
  messages: [{ role: "user", content: prompt }],
});
out.official = msg.content[0].text;
console.log(JSON.stringify(out));
