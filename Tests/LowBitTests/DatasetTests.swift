import Foundation
import LowBit
import Testing

@Suite("Datasets")
struct DatasetTests {
    static let goodTS = """
        # a comment
        #another
        @problemName Tiny
        @timeStamps false
        @missing true
        @univariate false
        @dimensions 2
        @equalLength false
        @classLabel true up down flat
        @data
        1,2,3:4,5,6:up
        # comments may sit among the series
        0.5,-1e-2,?:7,8,9:down
        2.5:-3:flat
        """

    @Test("a .ts file: header, comments, variable lengths, string labels, missing values")
    func readsTS() throws {
        let d = try TSFile.parse(Self.goodTS, path: "tiny.ts")
        #expect(d.name == "Tiny")
        #expect(d.channels == 2)
        #expect(d.classNames == ["up", "down", "flat"])
        #expect(d.labels == [0, 1, 2])
        #expect(d.lengths == [3, 3, 1])
        // [steps, channels] row-major: step t holds (dim1[t], dim2[t]).
        #expect(d.series[0] == [1, 4, 2, 5, 3, 6])
        #expect(d.series[1] == [0.5, 7, -0.01, 8, -0.01, 9])  // '?' filled from the step before
        #expect(d.series[2] == [2.5, -3])
    }

    @Test("a univariate .ts file without @dimensions; CRLF line ends")
    func readsUnivariateTS() throws {
        let text = "@problemName U\r\n@univariate true\r\n@equalLength true\r\n@classLabel true a b\r\n@data\r\n1,2:a\r\n3,4:b\r\n"
        let d = try TSFile.parse(text, path: "u.ts")
        #expect(d.channels == 1)
        #expect(d.series == [[1, 2], [3, 4]])
        #expect(d.labels == [0, 1])
    }

    @Test("malformed .ts files are errors naming the file, the line and the problem", arguments: [
        ("@problemName X\n@classLabel true a b\n1,2:a\n", "line 3", "@data"),
        ("@problemName X\n@classLabel true a b\n", "bad.ts", "no @data"),
        ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n", "line 5", "1 dimensions, the header declares 2"),
        ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:3,4:5,6:b\n", "line 5", "3 dimensions"),
        ("@classLabel true a b\n@data\n1,x2:a\n", "line 3", "'x2' in dimension 1 is not a finite number"),
        ("@classLabel true a b\n@data\n1,inf:a\n", "line 3", "not a finite number"),
        ("@classLabel true a b\n@data\n1,2:a\n1,2:c\n", "line 4", "class label 'c' is not declared"),
        ("@problemName X\n@data\n1,2:a\n", "line 2", "@data before @classLabel"),
        ("@classLabel false\n@data\n1,2\n", "line 1", "no class labels"),
        ("@timeStamps true\n@classLabel true a b\n@data\n", "line 1", "@timeStamps true is not supported"),
        ("@frobnicate 3\n@classLabel true a b\n@data\n", "line 1", "unknown header '@frobnicate'"),
        ("@classLabel true a b\n@data\n", "bad.ts", "no series"),
        ("@classLabel true a b\n@data\n1,?:a\n", "line 3", "does not declare @missing true"),
        ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3:a\n", "line 4", "dimension 2 has 1 values, dimension 1 has 2"),
        ("@equalLength true\n@classLabel true a b\n@data\n1,2:a\n1,2,3:b\n", "line 5", "@equalLength true"),
        ("@classLabel true a\n@data\n", "line 1", "at least 2"),
        ("@dimensions two\n@classLabel true a b\n@data\n", "line 1", "@dimensions must be a positive integer"),
        ("1,2,3:a\n", "line 1", "expected a header line"),
        ("@univariate true\n@dimensions 3\n@classLabel true a b\n@data\n", "line 2", "@dimensions 3 contradicts @univariate true"),
        ("@dimensions 3\n@univariate true\n@classLabel true a b\n@data\n", "line 2", "@univariate true contradicts @dimensions 3"),
        ("@classLabel true a b\n@data\n1,2\n", "line 3", "a series needs values and a class label"),
    ])
    func malformedTS(text: String, location: String, problem: String) throws {
        let error = #expect(throws: LowBitError.self) { try TSFile.parse(text, path: "bad.ts") }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("bad.ts: "), "\(message)")
        #expect(message.contains(location), "\(message)")
        #expect(message.contains(problem), "\(message)")
    }

    @Test("a missing or unreadable file names its path")
    func missingFile() throws {
        let error = #expect(throws: LowBitError.self) { try Datasets.read("/nonexistent/X_TRAIN.ts") }
        #expect("\(error!)".contains("/nonexistent/X_TRAIN.ts"))
        let unknown = #expect(throws: LowBitError.self) { try Datasets.read("data.parquet") }
        #expect("\(unknown!)".contains("unknown dataset format"))
    }

    @Test("CSV, wide layout (UCR): label first, optional header, ragged rows")
    func readsWideCSV() throws {
        let d = try CSVFile.parse("label,t0,t1,t2\nyes,1,2,3\nno,4,5,\nyes,6,,\n", path: "w.csv")
        #expect(d.channels == 1)
        #expect(d.classNames == ["yes", "no"])
        #expect(d.labels == [0, 1, 0])
        #expect(d.series == [[1, 2, 3], [4, 5], [6]])
        let tsv = try CSVFile.parse("1\t0.5\t0.25\n2\t1\t2\n", path: "w.tsv")
        #expect(tsv.series == [[0.5, 0.25], [1, 2]])
        #expect(tsv.classNames == ["1", "2"])
    }

    @Test("CSV, long layout: series and label columns, channels, steps ordered by a step column")
    func readsLongCSV() throws {
        let text = """
            series,step,x,y,label
            a,1,10,20,cat
            a,0,1,2,cat
            b,0,5,6,dog
            """
        let d = try CSVFile.parse(text, path: "l.csv")
        #expect(d.channels == 2)
        #expect(d.series == [[1, 2, 10, 20], [5, 6]])
        #expect(d.classNames == ["cat", "dog"])
        #expect(d.labels == [0, 1])
    }

    @Test("malformed CSV files are errors naming the file, the line and the problem", arguments: [
        ("a,1,2\nb,1,x\n", "line 2, column 3", "'x' is not a finite number"),
        ("a,1,2\nb\n", "line 2", "needs a label and at least one value"),
        ("a,1,2\n,1,2\n", "line 2", "empty class label"),
        ("series,label,x\ns,a,1\ns,a\n", "line 3", "2 fields, the header has 3"),
        ("series,label,x\ns,a,1\nt,,2\n", "line 3", "empty class label"),
        ("series,label,x\ns,a,1\ns,b,2\n", "line 3", "changes label"),
        ("series,label,x\ns,a,1\nt,b,2\ns,a,3\n", "line 4", "not together"),
        ("series,label\ns,a\n", "line 1", "no channel columns"),
        ("# only a comment\n", "bad.csv", "no data"),
    ])
    func malformedCSV(text: String, location: String, problem: String) throws {
        let error = #expect(throws: LowBitError.self) { try CSVFile.parse(text, path: "bad.csv") }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix("bad.csv: "), "\(message)")
        #expect(message.contains(location), "\(message)")
        #expect(message.contains(problem), "\(message)")
    }

    @Test("the embedded JapaneseVowels: 270 + 370 series, 12 channels, lengths 7 to 29, 9 speakers")
    func embeddedDataset() throws {
        let (train, test) = try Datasets.japaneseVowels()
        #expect(train.name == "JapaneseVowels")
        #expect((train.count, test.count) == (270, 370))
        #expect((train.channels, test.channels) == (12, 12))
        #expect(train.classNames == (1...9).map(String.init))
        #expect(min(train.lengths.min()!, test.lengths.min()!) == 7)
        #expect(max(train.maxLength, test.maxLength) == 29)
        // 30 utterances per speaker in the training split.
        #expect((0..<9).allSatisfy { c in train.labels.filter { $0 == c }.count == 30 })
        // The shipped copy is the archive's file, byte for byte (when the archive is beside us).
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/data/JapaneseVowels/JapaneseVowels_TRAIN.ts").path
        if let original = FileManager.default.contents(atPath: shared) {
            #expect(FileManager.default.contents(atPath: try Datasets.japaneseVowelsPath("TRAIN")) == original)
        }
    }

    @Test("the _TEST sibling of a _TRAIN file is found")
    func testSibling() throws {
        let train = temporaryPath("Sib_TRAIN.ts"), test = temporaryPath("Sib_TEST.ts")
        try "x".write(toFile: train, atomically: true, encoding: .utf8)
        #expect(Datasets.testSibling(of: train) == nil)
        try "x".write(toFile: test, atomically: true, encoding: .utf8)
        #expect(Datasets.testSibling(of: train) == test)
        #expect(Datasets.testSibling(of: test) == nil)
    }

    @Test("standardization comes from the training split only and makes each channel mean 0, deviation 1 there")
    func standardization() throws {
        let (train, test) = try Datasets.japaneseVowels()
        let s = ChannelStandardization(fitting: train)
        let fromTest = ChannelStandardization(fitting: test)
        #expect(s != fromTest)
        let (batch, _) = try train.batch(Array(0..<train.count), standardization: s)
        let v = batch.values.scalars, steps = batch.shape.steps
        for c in 0..<12 {
            var values: [Double] = []
            for b in 0..<train.count { for t in 0..<batch.shape.lengths[b] { values.append(Double(v[(b * steps + t) * 12 + c])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
            #expect(abs(mean) < 1e-4 && abs(sd - 1) < 1e-3, "channel \(c): mean \(mean), sd \(sd)")
        }
        // Padding is zero and the lengths are the real ones.
        #expect(batch.shape.lengths == train.lengths)
        let short = train.lengths.firstIndex(of: train.lengths.min()!)!
        #expect(v[(short * steps + steps - 1) * 12] == 0)
    }

    @Test("a constant channel gets deviation 1, not a division by zero")
    func constantChannel() throws {
        let d = try TimeSeriesDataset(name: "c", channels: 2, series: [[1, 5, 2, 5], [3, 5]], labels: [0, 1], classNames: ["a", "b"])
        let s = ChannelStandardization(fitting: d)
        #expect(s.deviation[1] == 1)
        #expect(s.mean == [2, 5])
    }

    @Test("a stratified split keeps every example once and each class in proportion")
    func split() throws {
        let (train, _) = try Datasets.japaneseVowels()
        let (kept, held) = try train.split(holdingOut: 0.2, seed: 9)
        #expect(kept.count + held.count == train.count)
        #expect((0..<9).allSatisfy { c in held.labels.filter { $0 == c }.count == 6 })
        let all = Set(kept.series.map { $0.description } + held.series.map { $0.description })
        #expect(all.count == train.count)
        #expect(try train.split(holdingOut: 0.2, seed: 9).heldOut == held)
        #expect(try train.split(holdingOut: 0.2, seed: 10).heldOut != held)
    }

    @Test("relabelling maps classes by name and refuses an unknown one")
    func relabel() throws {
        let d = try CSVFile.parse("b,1\na,2\n", path: "r.csv")
        #expect(try d.relabelled(to: ["a", "b"]).labels == [1, 0])
        let error = #expect(throws: LowBitError.self) { try d.relabelled(to: ["a", "c"]) }
        #expect("\(error!)".contains("'b' is not one of the model's classes"))
    }

    @Test("long sequences keep their last steps when a window is set")
    func window() throws {
        let d = try TimeSeriesDataset(name: "w", channels: 1, series: [[1, 2, 3, 4], [5]], labels: [0, 1], classNames: ["a", "b"])
        let (batch, _) = try d.batch([0, 1], standardization: nil, maxSteps: 2)
        #expect(batch.shape.lengths == [2, 1])
        #expect(batch.values.scalars == [3, 4, 5, 0])
    }
}
