/// Which layers are quantized and how: a pattern on the layer's path ("blocks.*.attn.qkv",
/// "*.ffn.*", "*") and what to do with the layers it matches. The first matching rule wins;
/// a layer no rule matches stays float.
public struct QuantizationRule: Sendable, Equatable, Codable {
    /// A glob on layer paths: `*` matches any run of characters (dots too), `?` any one.
    public var pattern: String
    /// nil keeps the matched layers float.
    public var quantization: LayerQuantization?

    /// Creates a rule that gives the layers matching `pattern` the quantization `quantization`
    /// (nil: keeps them float).
    public init(_ pattern: String, _ quantization: LayerQuantization?) {
        self.pattern = pattern
        self.quantization = quantization
    }

    /// `*` matches any run of characters (dots too), `?` any one character.
    public func matches(_ path: String) -> Bool { globMatch(Array(pattern), Array(path)) }
}

/// What applying rules did.
public struct RuleReport: Sendable, Equatable {
    /// Each quantizable layer's path and the index of the rule that matched it (nil: float).
    public var assignments: [(path: String, rule: Int?)]
    /// Rules that matched no layer: usually a typo in a pattern.
    public var unusedRules: [QuantizationRule]

    /// Returns a Boolean value indicating whether two reports assign the same rules to the same
    /// layers, in the same order, and list the same unused rules.
    public static func == (a: RuleReport, b: RuleReport) -> Bool {
        a.unusedRules == b.unusedRules && a.assignments.map(\.path) == b.assignments.map(\.path)
            && a.assignments.map(\.rule) == b.assignments.map(\.rule)
    }
}

func applyRules(_ rules: [QuantizationRule], to linears: [Linear]) throws -> RuleReport {
    for rule in rules {
        if let q = rule.quantization {
            for l in linears where rule.matches(l.path) {
                try ReferenceQuantizer.validate(q.weightGranularity, mode: q.mode, cols: l.inputs)
            }
        }
    }
    var used = Set<Int>()
    var assignments: [(String, Int?)] = []
    for l in linears where l.quantizable {
        let index = rules.firstIndex { $0.matches(l.path) }
        if let index { used.insert(index) }
        l.quantization = index.flatMap { rules[$0].quantization }
        assignments.append((l.path, index))
    }
    let unused = rules.indices.filter { !used.contains($0) }.map { rules[$0] }
    return RuleReport(assignments: assignments, unusedRules: unused)
}

private func globMatch(_ p: [Character], _ s: [Character]) -> Bool {
    var (pi, si, star, mark) = (0, 0, -1, 0)
    while si < s.count {
        if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
            pi += 1; si += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi; mark = si; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; si = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}
