/**
 * A CSV reader after RFC 4180: records separated by CRLF, LF or CR; fields by commas; a field in
 * double quotes may hold commas, line breaks and doubled quotes (`""` = one `"`). Also accepted, as
 * spreadsheets write them: a UTF-8 byte-order mark, a last record without a line break. Refused
 * with the line number: a quote that is never closed, text after a closing quote, a quote inside
 * an unquoted field.
 */

/** One CSV record: its fields and the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** A CSV syntax error: `line` is 1-based (where the faulty field is). */
export class CsvError extends Error {
  constructor(readonly line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

/**
 * Parses CSV text into records (blank lines between records are skipped; a record that is one
 * empty field at the end of the text is not a record).
 * @throws CsvError (unclosed quote, text after a closing quote, a quote inside an unquoted field).
 */
export function parseCsv(text: string): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      let field = '';
      if (s[i] === '"') {
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new CsvError(quoteLine, 'a quoted field is never closed (a " is missing)');
          const c = s[i];
          if (c === '"') {
            if (s[i + 1] === '"') { field += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (c === '\r' || c === '\n') {
            line++;
            if (c === '\r' && s[i + 1] === '\n') { field += '\r\n'; i += 2; continue; }
          }
          field += c;
          i++;
        }
        if (i < n && s[i] !== ',' && s[i] !== '\r' && s[i] !== '\n') throw new CsvError(line, `text after a closing quote (${JSON.stringify(s.slice(i, i + 10))}); quote the whole field and double the quotes inside it`);
      } else {
        const from = i;
        while (i < n && s[i] !== ',' && s[i] !== '\r' && s[i] !== '\n') {
          if (s[i] === '"') throw new CsvError(line, 'a " inside an unquoted field; quote the field and double the quote ("")');
          i++;
        }
        field = s.slice(from, i);
      }
      fields.push(field);
      if (i >= n) { endOfRecord = true; break; }
      if (s[i] === ',') { i++; if (i >= n) fields.push(''); continue; }
      // line break
      i += s[i] === '\r' && s[i + 1] === '\n' ? 2 : 1;
      line++;
      endOfRecord = true;
    }
    if (fields.length === 1 && fields[0] === '') continue; // a blank line (or a lone empty field: no text to run)
    records.push({ line: start, fields });
  }
  return records;
}
