import Foundation

/// Reader for the UEA/UCR `.ts` time-series format (sktime's): `#` comments, `@` header
/// lines (`@problemName`, `@timeStamps`, `@missing`, `@univariate`, `@dimensions`,
/// `@equalLength`, `@seriesLength`, `@classLabel true LABELS…`) and after `@data` one
/// series per line: dimensions separated by `:`, values by `,`, the class label last.
/// Missing values (`?`, when `@missing true`) are filled from the nearest earlier value
/// of the same dimension, or the nearest later one at the start.
///
/// Every refusal is a ``LowBitError/invalidFile(path:reason:)`` naming the line and problem.
public enum TSFile {
    /// Reads the `.ts` file at `path` as UTF-8 text and parses it.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` if the file cannot be read, is not
    ///   UTF-8, or does not parse.
    public static func read(_ path: String) throws -> TimeSeriesDataset { try parse(readText(path), path: path) }

    /// Parses `.ts` text; `path` names it in errors and gives the default problem name.
    public static func parse(_ text: String, path: String) throws -> TimeSeriesDataset {
        var header: [String: String] = [:]
        var classNames: [String]?
        var inData = false
        var series: [[Float]] = [], labels: [Int] = []
        var channels: Int?
        var lineNumber = 0
        func fail(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: "line \(lineNumber): \(reason)") }

        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !inData {
                guard line.hasPrefix("@") else { throw fail("expected a header line (@…) or @data before the series, got '\(line.prefix(40))'") }
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                let key = parts[0].lowercased()
                let value = parts.dropFirst().joined(separator: " ")
                switch key {
                case "@data":
                    guard header["@classlabel"] != nil else { throw fail("@data before @classLabel: LowBit needs class labels") }
                    if header["@dimensions"] == nil, header["@univariate"] == "true" { channels = 1 }
                    inData = true
                case "@classlabel":
                    guard parts.count >= 2, parts[1].lowercased() == "true" else {
                        throw fail("@classLabel false: the file has no class labels, so it cannot train a classifier")
                    }
                    let names = Array(parts.dropFirst(2))
                    guard names.count >= 2 else { throw fail("@classLabel declares \(names.count) class(es); a classifier needs at least 2") }
                    guard Set(names).count == names.count else { throw fail("@classLabel declares a class twice") }
                    classNames = names
                    header[key] = "true"
                case "@targetlabel":
                    throw fail("@targetLabel marks a regression problem; LowBit's train command classifies")
                case "@timestamps":
                    guard value.lowercased() == "false" else { throw fail("@timeStamps true is not supported; write the values without time stamps") }
                    header[key] = "false"
                case "@dimensions":
                    guard let d = Int(value), d > 0 else { throw fail("@dimensions must be a positive integer, got '\(value)'") }
                    if header["@univariate"] == "true", d != 1 { throw fail("@dimensions \(d) contradicts @univariate true") }
                    channels = d
                    header[key] = value
                case "@univariate", "@equallength", "@missing":
                    guard ["true", "false"].contains(value.lowercased()) else { throw fail("\(parts[0]) must be true or false, got '\(value)'") }
                    header[key] = value.lowercased()
                    if key == "@univariate", value.lowercased() == "true" {
                        if let d = channels, d != 1 { throw fail("@univariate true contradicts @dimensions \(d)") }
                        channels = 1
                    }
                case "@problemname", "@serieslength":
                    header[key] = value
                default:
                    throw fail("unknown header '\(parts[0])'")
                }
                continue
            }

            // A series: dim1:dim2:…:label
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2 else { throw fail("a series needs values and a class label separated by ':'") }
            let label = fields.last!.trimmingCharacters(in: .whitespaces)
            guard let classIndex = classNames!.firstIndex(of: label) else {
                throw fail("class label '\(label)' is not declared in @classLabel (\(classNames!.joined(separator: " ")))")
            }
            let dims = fields.dropLast()
            if channels == nil { channels = dims.count }
            guard dims.count == channels! else { throw fail("\(dims.count) dimensions, the header declares \(channels!)") }
            var columns: [[Float]] = []
            for (d, field) in dims.enumerated() {
                var values: [Float?] = []
                for token in field.split(separator: ",", omittingEmptySubsequences: false) {
                    let t = token.trimmingCharacters(in: .whitespaces)
                    if t == "?" || t.lowercased() == "nan" {
                        guard header["@missing"] == "true" else { throw fail("missing value '\(t)' in dimension \(d + 1), but the header does not declare @missing true") }
                        values.append(nil)
                    } else if let v = Float(t), v.isFinite {
                        values.append(v)
                    } else {
                        throw fail("'\(t.prefix(30))' in dimension \(d + 1) is not a finite number")
                    }
                }
                guard let filled = fillMissing(values) else { throw fail("dimension \(d + 1) has no values") }
                if let first = columns.first, first.count != filled.count {
                    throw fail("dimension \(d + 1) has \(filled.count) values, dimension 1 has \(first.count)")
                }
                columns.append(filled)
            }
            if header["@equallength"] == "true", let first = series.first, first.count != columns[0].count * channels! {
                throw fail("series of length \(columns[0].count), but @equalLength true and the first series has \(first.count / channels!)")
            }
            let steps = columns[0].count
            var row = [Float](repeating: 0, count: steps * channels!)
            for t in 0..<steps { for c in 0..<channels! { row[t * channels! + c] = columns[c][t] } }
            series.append(row)
            labels.append(classIndex)
        }
        guard inData else { throw LowBitError.invalidFile(path: path, reason: "no @data line: not a .ts file, or the header is incomplete") }
        guard !series.isEmpty else { throw LowBitError.invalidFile(path: path, reason: "@data is followed by no series") }
        let name = header["@problemname"].flatMap { $0.isEmpty ? nil : $0 }
            ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try TimeSeriesDataset(name: name, channels: channels!, series: series, labels: labels, classNames: classNames!)
    }

    /// A text file's contents, or an error naming why not.
    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LowBitError.invalidFile(path: path, reason: "cannot read the file (missing or unreadable)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LowBitError.invalidFile(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    /// Fills gaps from the previous value (the next one for leading gaps); nil when all missing.
    static func fillMissing(_ values: [Float?]) -> [Float]? {
        guard let firstKnown = values.first(where: { $0 != nil }) ?? nil else { return nil }
        var last = firstKnown
        return values.map { v in
            if let v { last = v }
            return last
        }
    }
}

extension TSFile {
    /// `dataset` as `.ts` text that ``parse(_:path:)`` reads back to the same dataset: every
    /// value is written with the digits that round-trip.
    public static func text(_ dataset: TimeSeriesDataset) -> String {
        let c = dataset.channels
        let lengths = Set(dataset.series.map { $0.count / c })
        var out = "@problemName \(dataset.name.replacingOccurrences(of: " ", with: "_"))\n@timeStamps false\n@missing false\n"
        out += "@univariate \(c == 1)\n@dimensions \(c)\n@equalLength \(lengths.count == 1)\n"
        if lengths.count == 1 { out += "@seriesLength \(lengths.first!)\n" }
        out += "@classLabel true \(dataset.classNames.joined(separator: " "))\n@data\n"
        for (row, label) in zip(dataset.series, dataset.labels) {
            let steps = row.count / c
            for channel in 0..<c {
                out += (0..<steps).map { "\(row[$0 * c + channel])" }.joined(separator: ",")
                out += ":"
            }
            out += dataset.classNames[label] + "\n"
        }
        return out
    }

    /// Writes ``text(_:)`` to `path`, atomically.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for a class name that a `.ts` file cannot
    ///   hold (empty, or with a space, `:` or `,`); ``LowBitError/invalidFile(path:reason:)`` when
    ///   the file cannot be written.
    public static func write(_ dataset: TimeSeriesDataset, to path: String) throws {
        if let bad = dataset.classNames.first(where: { $0.isEmpty || $0.contains { " \t:,".contains($0) } }) {
            throw LowBitError.invalidArgument("class name '\(bad)' cannot be written to a .ts file (empty, or holds a space, ':' or ',')")
        }
        do {
            try text(dataset).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw LowBitError.invalidFile(path: path, reason: "cannot write it: \(error.localizedDescription)")
        }
    }
}
