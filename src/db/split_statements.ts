/**
 * Splits a SQL script into its statements, at semicolons outside quotes
 * ('...', "..."), dollar quotes ($$...$$, $tag$...$tag$) and comments; drops
 * comments that stand alone and empty statements.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = "";
  let i = 0;
  const flush = () => {
    const statement = stripLeadingComments(current).trim();
    if (statement !== "") statements.push(statement);
    current = "";
  };
  while (i < script.length) {
    const char = script[i];
    const rest = script.slice(i);
    let end: number;
    if (rest.startsWith("--")) {
      end = script.indexOf("\n", i);
      end = end < 0 ? script.length : end + 1;
    } else if (rest.startsWith("/*")) {
      end = script.indexOf("*/", i + 2);
      end = end < 0 ? script.length : end + 2;
    } else if (char === "'" || char === '"') {
      end = closingQuote(script, i, char);
    } else if (char === "$") {
      const tag = /^\$(?:[A-Za-z_][\w]*)?\$/.exec(rest)?.[0];
      if (tag === undefined) {
        end = i + 1;
      } else {
        const close = script.indexOf(tag, i + tag.length);
        end = close < 0 ? script.length : close + tag.length;
      }
    } else if (char === ";") {
      flush();
      i++;
      continue;
    } else {
      end = i + 1;
    }
    current += script.slice(i, end);
    i = end;
  }
  flush();
  return statements;
}

/** Past a quoted part; a doubled quote is an escaped one. */
function closingQuote(script: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < script.length) {
    if (script[i] === quote) {
      if (script[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return script.length;
}

function stripLeadingComments(statement: string): string {
  let rest = statement.trimStart();
  while (rest.startsWith("--") || rest.startsWith("/*")) {
    const end = rest.startsWith("--") ? rest.indexOf("\n") : rest.indexOf("*/") + 1;
    rest = end <= 0 ? "" : rest.slice(end + 1).trimStart();
  }
  return rest;
}
