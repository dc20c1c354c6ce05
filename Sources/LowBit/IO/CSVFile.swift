import Foundation

/// Reader for time series in plain CSV (comma, tab or semicolon separated), in one of two
/// layouts, told apart by the first line:
///
/// - **Wide** (the UCR archive's CSV/TSV layout, univariate): one series per line, the class
///   label first, then the values; lines may differ in length (trailing empty fields are
///   ignored). An optional header line is recognised by a first field that is not a
///   number and a second that is not either ("label,t0,t1,…").
/// - **Long** (multivariate): a header naming a `series` column and a `label` column;
///   every other column (except an optional `step`/`time` column, used to order the steps)
///   is a channel; one row per step, rows of a series together.
///
/// Class names are kept in order of first appearance.
public enum CSVFile {
    /// Reads the file at `path` as UTF-8 text and parses it; the dataset is named after the file.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` if the file cannot be read, is not
    ///   UTF-8, or does not parse.
    public static func read(_ path: String) throws -> TimeSeriesDataset { try parse(TSFile.readText(path), path: path) }

    /// Parses CSV text in either layout. `path` names the text in errors and, without its
    /// extension, names the dataset. Blank lines and lines starting with `#` are skipped.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` naming the line (and column) of an empty
    ///   label, a number that is not finite, a long-layout row with the wrong field count, or a
    ///   series whose rows are apart or change label; also when there is no series.
    public static func parse(_ text: String, path: String) throws -> TimeSeriesDataset {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
            .map { ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespacesAndNewlines)) }
            .filter { !$0.1.isEmpty && !$0.1.hasPrefix("#") }
        guard let first = lines.first else { throw LowBitError.invalidFile(path: path, reason: "the file holds no data") }
        let separator: Character = first.1.contains("\t") ? "\t" : first.1.contains(",") ? "," : ";"
        func fields(_ line: String) -> [String] {
            line.split(separator: separator, omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        let head = fields(first.1)
        let lowered = head.map { $0.lowercased() }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var classNames: [String] = []
        func classIndex(_ label: String, _ line: Int) throws -> Int {
            guard !label.isEmpty else { throw LowBitError.invalidFile(path: path, reason: "line \(line): empty class label") }
            if let i = classNames.firstIndex(of: label) { return i }
            classNames.append(label)
            return classNames.count - 1
        }
        func number(_ t: String, _ line: Int, _ column: Int) throws -> Float {
            guard let v = Float(t), v.isFinite else {
                throw LowBitError.invalidFile(path: path, reason: "line \(line), column \(column): '\(t.prefix(30))' is not a finite number")
            }
            return v
        }

        var series: [[Float]] = [], labels: [Int] = []
        let channels: Int
        if let seriesColumn = lowered.firstIndex(of: "series"), let labelColumn = lowered.firstIndex(of: "label") {
            let stepColumn = lowered.firstIndex(of: "step") ?? lowered.firstIndex(of: "time")
            let channelColumns = head.indices.filter { ![seriesColumn, labelColumn, stepColumn].contains($0) }
            guard !channelColumns.isEmpty else { throw LowBitError.invalidFile(path: path, reason: "line \(first.0): no channel columns besides series and label") }
            channels = channelColumns.count
            var order: [String] = [], rows: [String: [(step: Float, values: [Float])]] = [:], labelOf: [String: String] = [:]
            var lastID: String?
            for (n, line) in lines.dropFirst() {
                let f = fields(line)
                guard f.count == head.count else {
                    throw LowBitError.invalidFile(path: path, reason: "line \(n): \(f.count) fields, the header has \(head.count)")
                }
                let id = f[seriesColumn]
                if rows[id] == nil {
                    order.append(id)
                } else if lastID != id {
                    throw LowBitError.invalidFile(path: path, reason: "line \(n): the rows of series '\(id)' are not together")
                }
                lastID = id
                if let l = labelOf[id], l != f[labelColumn] {
                    throw LowBitError.invalidFile(path: path, reason: "line \(n): series '\(id)' changes label from '\(l)' to '\(f[labelColumn])'")
                }
                if labelOf[id] == nil {
                    _ = try classIndex(f[labelColumn], n)   // names the line of an empty label; classes in order of appearance
                }
                labelOf[id] = f[labelColumn]
                let step = try stepColumn.map { try number(f[$0], n, $0 + 1) } ?? Float(rows[id]?.count ?? 0)
                rows[id, default: []].append((step, try channelColumns.map { try number(f[$0], n, $0 + 1) }))
            }
            for id in order {
                series.append(rows[id]!.sorted { $0.step < $1.step }.flatMap(\.values))
                labels.append(try classIndex(labelOf[id]!, 0))
            }
        } else {
            channels = 1
            let hasHeader = head.count >= 2 && Float(head[0]) == nil && Float(head[1]) == nil
            for (n, line) in lines.dropFirst(hasHeader ? 1 : 0) {
                var f = fields(line)
                while f.last?.isEmpty == true { f.removeLast() }
                guard f.count >= 2 else {
                    throw LowBitError.invalidFile(path: path, reason: "line \(n): a series needs a label and at least one value")
                }
                labels.append(try classIndex(f[0], n))
                series.append(try f.dropFirst().enumerated().map { try number($0.element, n, $0.offset + 2) })
            }
        }
        guard !series.isEmpty else { throw LowBitError.invalidFile(path: path, reason: "the file holds no series") }
        return try TimeSeriesDataset(name: name, channels: channels, series: series, labels: labels, classNames: classNames)
    }
}
