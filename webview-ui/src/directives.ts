/**
 * `cssProps({...})`: sets CSS properties on an element through the CSSOM
 * (`element.style.setProperty`). Lit's `styleMap` writes a `style` attribute on first render,
 * which the webview's CSP (`style-src` without 'unsafe-inline') blocks; CSSOM writes are allowed.
 * Usage: html`<div ${cssProps({ width: '42%' })}></div>`
 */
import { nothing } from 'lit';
import { Directive, directive, ElementPart, PartInfo, PartType } from 'lit/directive.js';

class CssPropsDirective extends Directive {
  private previous = new Set<string>();

  constructor(part: PartInfo) {
    super(part);
    if (part.type !== PartType.ELEMENT) throw new Error('cssProps() must be used as an element directive');
  }

  render(_props: Record<string, string | undefined>): typeof nothing {
    return nothing;
  }

  override update(part: ElementPart, [props]: [Record<string, string | undefined>]): typeof nothing {
    const style = (part.element as HTMLElement).style;
    for (const name of this.previous) if (props[name] === undefined) style.removeProperty(name);
    this.previous = new Set();
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined) continue;
      style.setProperty(name, value);
      this.previous.add(name);
    }
    return nothing;
  }
}

export const cssProps = directive(CssPropsDirective);
