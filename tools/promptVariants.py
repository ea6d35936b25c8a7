# Prompt variants of the built-in adapters for docs/quality.md's table:
#   python3 tools/promptVariants.py OUT_DIR  ->  OUT_DIR/<id>.{zero,few,more|one}.taskling.json
# (few = the adapter as in src/core/adapters/builtin; run from the repository root).
import json, copy, os, sys
B = 'src/core/adapters/builtin'
OUT = sys.argv[1] if len(sys.argv) > 1 else 'prompt-variants'; os.makedirs(OUT, exist_ok=True)
EXTRA = {
  'sentiment': [
    {"input": "Do you ship to Norway, and how long does it usually take?", "output": "neutral"},
    {"input": "I asked three times for a callback and nobody ever phoned me back. Please sort this out.", "output": "negative"},
  ],
  'support-routing': [
    {"input": "Please add my colleague Ana as an admin user on our workspace.", "output": "account"},
    {"input": "Would your company be interested in a co-marketing partnership with our podcast?", "output": "other"},
  ],
  'contract-clause': [
    {"input": "Neither party may disclose the terms of this Agreement to anyone except its professional advisers.", "output": "confidentiality"},
    {"input": "Fees are invoiced quarterly in advance. Late amounts accrue interest at the statutory rate.", "output": "payment-terms"},
    {"input": "Licensee will compensate Licensor for all losses arising from any claim brought by a third party relating to Licensee's use of the Software.", "output": "indemnification"},
    {"input": "This Agreement may not be assigned by either party without the prior written consent of the other.", "output": "other"},
  ],
  'moderation': [
    {"input": "Immigrants from that country are all criminals and animals, every one of them.", "output": ["hate"]},
    {"input": "The article reports that two people were injured in the protest on Saturday.", "output": []},
  ],
}
for f in sorted(os.listdir(B)):
    if not f.endswith('.taskling.json'): continue
    a = json.load(open(os.path.join(B, f))); aid = a['id']
    def put(name, x):
        json.dump(x, open(f'{OUT}/{aid}.{name}.taskling.json', 'w'), indent=2, ensure_ascii=False)
    put('few', a)
    z = copy.deepcopy(a); z['examples'] = []; put('zero', z)
    if aid in EXTRA:
        m = copy.deepcopy(a); m['examples'] = a['examples'] + EXTRA[aid]; put('more', m)
    else:
        o = copy.deepcopy(a); o['examples'] = a['examples'][:1]; put('one', o)
print(sorted(os.listdir(OUT)))
