/// What a piece of text means on screen; `ANSI` turns it into colours and attributes
/// (or only attributes, without colours).
public enum Style: Sendable, Hashable {
    case normal
    case strong
    case faint
    /// The title and key bars.
    case bar
    /// The selected torrent.
    case selected
    case good
    case busy
    case bad
    case accent
}

/// A run of text in one style. The text is clean (no control characters).
public struct Span: Sendable, Hashable {
    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style = .normal) {
        self.text = text
        self.style = style
    }
}

/// One line of a frame: styled spans, measured in terminal columns.
public struct Line: Sendable, Hashable {
    public var spans: [Span]

    public init(_ spans: [Span] = []) { self.spans = spans }

    public init(_ text: String, _ style: Style = .normal) { spans = [Span(text, style)] }

    /// The text without styles.
    public var text: String { spans.map(\.text).joined() }

    /// Columns the line takes.
    public var width: Int { spans.reduce(0) { $0 + TextWidth.of($1.text) } }

    public mutating func append(_ text: String, _ style: Style = .normal) {
        guard !text.isEmpty else { return }
        if let last = spans.last, last.style == style {
            spans[spans.count - 1].text += text
        } else {
            spans.append(Span(text, style))
        }
    }

    public mutating func append(_ line: Line) {
        for span in line.spans { append(span.text, span.style) }
    }

    /// The line cut to `width` columns, ending with `ellipsis` when something was cut.
    public func fitted(to width: Int, ellipsis: String = "…") -> Line {
        guard self.width > width else { return self }
        let room = width - TextWidth.of(ellipsis)
        guard room >= 0 else { return prefix(width) }
        var out = prefix(room)
        out.append(ellipsis, spans.last?.style ?? .normal)
        return out
    }

    /// The longest prefix within `width` columns (whole characters).
    public func prefix(_ width: Int) -> Line {
        var out = Line()
        var left = max(0, width)
        for span in spans {
            let w = TextWidth.of(span.text)
            if w <= left {
                out.append(span.text, span.style)
                left -= w
            } else {
                out.append(TextWidth.prefix(span.text, left), span.style)
                break
            }
        }
        return out
    }

    /// The line cut or padded with spaces to exactly `width` columns (the padding in `style`).
    public func padded(to width: Int, style: Style = .normal, ellipsis: String = "…") -> Line {
        var out = fitted(to: width, ellipsis: ellipsis)
        let missing = width - out.width
        if missing > 0 { out.append(String(repeating: " ", count: missing), style) }
        return out
    }

    /// `left` and `right` on one line of `width` columns, `right` against the right edge.
    /// When both do not fit, `left` is shortened down to `minLeft` columns; below that,
    /// `right` is dropped.
    public static func justified(_ left: Line, _ right: Line, width: Int, minLeft: Int = 8, fill: Style = .normal,
                                 ellipsis: String = "…") -> Line {
        let rightWidth = right.width
        let leftWidth = left.width
        if leftWidth + 1 + rightWidth <= width {
            var out = left
            out.append(String(repeating: " ", count: width - leftWidth - rightWidth), fill)
            out.append(right)
            return out
        }
        let room = width - rightWidth - 1
        guard room >= min(minLeft, leftWidth), rightWidth > 0 else { return left.fitted(to: width, ellipsis: ellipsis) }
        var out = left.fitted(to: room, ellipsis: ellipsis)
        out.append(String(repeating: " ", count: width - out.width - rightWidth), fill)
        out.append(right)
        return out
    }
}
