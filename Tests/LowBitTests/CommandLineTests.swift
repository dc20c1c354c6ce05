import Foundation
import LowBit
import Testing

/// The `lowbit` executable, run as a user runs it: built beside the test runner.
struct LowBitProcess {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lowbit")
    }

    let process = Process()
    let stdout = Pipe(), stderr = Pipe()

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable.path) else {
            throw LowBitError.invalidFile(path: Self.executable.path, reason: "the lowbit executable was not built beside the tests")
        }
        process.executableURL = Self.executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
    }

    /// Waits for the end; (status, standard output, standard error).
    func finish() -> (status: Int32, out: String, err: String) {
        let out = stdout.fileHandleForReading.readDataToEndOfFile(), err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try LowBitProcess(arguments, environment: environment).finish()
    }
}

@Suite("Command line", .serialized)
struct CommandLineTests {
    static let small = ["--hidden-size", "16", "--layers", "1", "--heads", "2"]

    @Test("train --json: one JSON array on stdout, the table on stderr, and per mode a checkpoint, packed model, metrics and SVG curve")
    func trainJSON() throws {
        let out = temporaryPath("cli-train")
        let r = try LowBitProcess.run(["train", "--mode", "float,ternary", "--epochs", "2", "--json", "--out", out] + Self.small)
        #expect(r.status == 0, "\(r.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], "stdout: \(r.out)")
        #expect(rows.map { $0["mode"] as? String } == ["float", "ternary"])
        for row in rows {
            for key in ["mode", "test_accuracy", "final_loss", "train_seconds", "packed_bytes", "latency_ms"] {
                #expect(row[key] != nil, "missing \(key)")
            }
            #expect((row["test_accuracy"] as? Double ?? 0) > 0.3)
            #expect((row["settings"] as? [String: Any])?["positionalEncoding"] as? Bool == true, "positions on by default")
            #expect((row["settings"] as? [String: Any])?["ensembleSize"] as? Int == 2, "two models per mode by default")
            #expect((row["model_accuracies"] as? [Double])?.count == 2)
            let dir = out + "/" + (row["mode"] as! String)
            for file in ["checkpoint.safetensors", "checkpoint-2.safetensors", "model.packed.safetensors", "metrics.json"] {
                #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(dir)/\(file)")
            }
            let svg = try String(contentsOfFile: dir + "/curve.svg", encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.hasSuffix("</svg>\n"))
            let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/metrics.json"))) as! [String: Any]
            #expect((metrics["history"] as? [Any])?.count == 2)
            #expect((metrics["histories"] as? [[Any]])?.map(\.count) == [2, 2])

            // eval of the packed model reproduces the reported accuracy.
            let e = try LowBitProcess.run(["eval", dir + "/model.packed.safetensors", "--json"])
            #expect(e.status == 0, "\(e.err)")
            let report = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
            #expect(report["accuracy"] as? Double == row["test_accuracy"] as? Double)
            #expect((report["confusion"] as? [[Int]])?.count == 9)
        }
        #expect((rows[0]["packed_bytes"] as! Int) > 3 * (rows[1]["packed_bytes"] as! Int))
        #expect(r.err.contains("mode") && r.err.contains("packed bytes"), "the table goes to stderr with --json")

        // --no-positional-encoding reaches the model, and the packed file keeps it off; --ensemble 1 trains one model.
        let off = try LowBitProcess.run(["train", "--mode", "int4", "--epochs", "1", "--no-positional-encoding", "--ensemble", "1", "--json",
                                         "--out", out + "-unordered"] + Self.small)
        #expect(off.status == 0, "\(off.err)")
        let offRow = try #require((try JSONSerialization.jsonObject(with: Data(off.out.utf8)) as? [[String: Any]])?.first)
        #expect((offRow["settings"] as? [String: Any])?["positionalEncoding"] as? Bool == false)
        #expect((offRow["model_accuracies"] as? [Double]) == [offRow["test_accuracy"] as! Double])
        #expect(!FileManager.default.fileExists(atPath: out + "-unordered/int4/checkpoint-2.safetensors"))
        #expect(try SafeTensors.read(out + "-unordered/int4/model.packed.safetensors").metadata["lowbit.format"] == PackedClassifier.fileFormatVersion)
        let offEval = try LowBitProcess.run(["eval", out + "-unordered/int4/model.packed.safetensors", "--json"])
        let offReport = try JSONSerialization.jsonObject(with: Data(offEval.out.utf8)) as? [String: Any]
        #expect(offReport?["accuracy"] as? Double == offRow["test_accuracy"] as? Double, "\(offEval.err)")
    }

    @Test("modes trained side by side (two threads, one each) end exactly where each trained alone on one thread ends")
    func concurrentModes() throws {
        let out = temporaryPath("cli-concurrent")
        func rows(_ r: (status: Int32, out: String, err: String)) throws -> [[String: Any]] {
            #expect(r.status == 0, "\(r.err)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], "stdout: \(r.out)")
        }
        let args = ["--epochs", "2", "--json", "--dropout", "0.3"] + Self.small
        let together = try LowBitProcess.run(["train", "--mode", "ternary,float,int4", "--out", out] + args, environment: ["LOWBIT_THREADS": "2"])
        #expect(together.err.contains("2 models at a time, 1 thread each"), "\(together.err)")
        let both = try rows(together)
        #expect(both.map { $0["mode"] as? String } == ["ternary", "float", "int4"])
        for row in both {
            let mode = row["mode"] as! String
            let alone = try rows(try LowBitProcess.run(["train", "--mode", mode, "--out", out + "-" + mode] + args,
                                                       environment: ["LOWBIT_THREADS": "1"]))
            for key in ["final_loss", "steps"] {
                #expect("\(row[key]!)" == "\(alone[0][key]!)", "\(mode) \(key)")
            }
            // The trained models are the same bytes. (The evaluation after training runs on
            // every thread, two here and one there, and OpenBLAS's float sums may then round
            // differently in the last bit on some CPUs: the losses are not compared exactly.)
            let packed = "/\(mode)/model.packed.safetensors"
            #expect(FileManager.default.contentsEqual(atPath: out + packed, andPath: out + "-" + mode + packed), "\(mode)")
        }
    }

    @Test("--select-on: a held-out share of the training data picks each model's epoch; metrics.json says which")
    func checkpointSelection() throws {
        let out = temporaryPath("cli-select")
        let r = try LowBitProcess.run(["train", "--mode", "ternary", "--epochs", "3", "--select-on", "0.3", "--json", "--out", out] + Self.small)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("held out for checkpoint selection") && r.err.contains("lowest selection loss"), "\(r.err)")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/ternary/metrics.json"))) as! [String: Any]
        let recipe = try #require((metrics["result"] as? [String: Any])?["recipe"] as? [String: Any])
        #expect(recipe["select_on"] as? Double == 0.3)
        let epochs = try #require(recipe["selected_epochs"] as? [Int])
        #expect(epochs.count == 2 && epochs.allSatisfy { (1...3).contains($0) }, "\(epochs)")
        #expect(FileManager.default.fileExists(atPath: out + "/ternary/selected.safetensors"))
        #expect(FileManager.default.fileExists(atPath: out + "/ternary/selected-2.safetensors"))
    }

    @Test("SIGKILL at random moments, 20 times: the last checkpoint always loads, and --resume ends on the same model as a run never stopped; a second run on the same --out is refused")
    func killSafety() throws {
        // A small dataset, so that the 22 processes spend their time training, not starting.
        let data = temporaryPath("kill_TRAIN.csv")
        var rows = "label," + (0..<16).map { "t\($0)" }.joined(separator: ",") + "\n"
        var rng = TestRandom(23)
        for i in 0..<48 {
            let up = i % 2 == 0
            rows += (up ? "up," : "down,") + (0..<16).map { j in String(Float(up ? j : 16 - j) / 16 + rng.float(0.3)) }.joined(separator: ",") + "\n"
        }
        try rows.write(toFile: data, atomically: true, encoding: .utf8)
        let args = ["train", "--data", data, "--mode", "int4", "--epochs", "200", "--batch-size", "8", "--ensemble", "1", "--json",
                    "--checkpoint-every", "0"] + Self.small
        let straight = temporaryPath("cli-kill-straight"), out = temporaryPath("cli-kill")
        let reference = try LowBitProcess.run(args + ["--out", straight])
        #expect(reference.status == 0, "\(reference.err)")
        let checkpoint = out + "/int4/checkpoint.safetensors"
        // Each checkpoint is a new file moved into place: a new inode.
        func inode() -> Int? { (try? FileManager.default.attributesOfItem(atPath: checkpoint))?[.systemFileNumber] as? Int }
        rng = TestRandom(19)
        var steps: [Int] = []
        for kill in 0..<20 {
            let before = inode()
            let p = try LowBitProcess(args + ["--out", out, "--resume"])
            // Killed at a random moment of an epoch, measured on this run (a debug build with
            // sanitizers is a hundred times slower than a release one): after two checkpoints of
            // its own, so that every kill lands in training or in a checkpoint write.
            let deadline = Date().addingTimeInterval(300)
            while p.process.isRunning, inode() == before, Date() < deadline { usleep(200) }
            let (first, start) = (inode(), Date())
            while p.process.isRunning, inode() == first, Date() < deadline { usleep(200) }
            let epoch = Date().timeIntervalSince(start)
            if kill == 0 {
                let second = try LowBitProcess.run(args + ["--out", out])
                #expect(second.status == 1 && second.err.contains("is in use by another lowbit train"), "\(second.status): \(second.err)")
            }
            usleep(UInt32(Double(rng.next() % 1000) / 1000 * epoch * 1e6))
            Foundation.kill(p.process.processIdentifier, SIGKILL)
            let r = p.finish()
            #expect(r.status == 9, "status \(r.status): \(r.err)")
            steps.append(try ClassifierTraining(resumingFrom: checkpoint).optimizer.step)
        }
        #expect(Set(steps).count >= 10 && steps.last! < 200 * 5, "checkpoints at steps \(steps)")
        let finished = try LowBitProcess.run(args + ["--out", out, "--resume"])
        #expect(finished.status == 0, "\(finished.err)")
        #expect(FileManager.default.contentsEqual(atPath: out + "/int4/model.packed.safetensors", andPath: straight + "/int4/model.packed.safetensors"))
    }

    @Test("Ctrl-C keeps the last checkpoint; --resume continues from it to the end (binary, learning from float)")
    func interruptAndResume() throws {
        let out = temporaryPath("cli-interrupt")
        // A small model (the interruption is what is tested), with epochs enough that Ctrl-C
        // lands mid-run in a release build too.
        let args = ["train", "--mode", "binary", "--epochs", "10", "--distill", "0.5", "--out", out] + Self.small
        let checkpoint = out + "/binary/checkpoint.safetensors"
        let p = try LowBitProcess(args)
        let deadline = Date().addingTimeInterval(600)
        while !FileManager.default.fileExists(atPath: checkpoint), p.process.isRunning, Date() < deadline { usleep(5_000) }
        kill(p.process.processIdentifier, SIGINT)
        let r = p.finish()
        #expect(r.status == 130, "status \(r.status): \(r.err)")
        #expect(r.err.contains("--resume"))
        let saved = try ClassifierTraining(resumingFrom: checkpoint)
        let (train, _) = try Datasets.japaneseVowels()
        #expect(saved.optimizer.step >= saved.stepsPerEpoch(train) && !saved.isFinished(train), "step \(saved.optimizer.step)")

        let resumed = try LowBitProcess.run(args + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("binary 1/2: resuming at step \(saved.optimizer.step)") && resumed.out.contains("float 2/2: resuming at step"),
                "\(resumed.out)")
        let done = try ClassifierTraining(resumingFrom: checkpoint)
        #expect(done.isFinished(train))
        #expect(done.history.map(\.epoch) == Array(1...10))

        // Resuming with other settings is refused, naming the problem.
        let other = try LowBitProcess.run(["train", "--mode", "binary", "--epochs", "11", "--distill", "0.5", "--out", out, "--resume"] + Self.small)
        #expect(other.status != 0)
        #expect(other.err.contains("other settings"))
    }

    @Test("bad arguments are clear errors", arguments: [
        (["train", "--mode", "int3"], "unknown mode 'int3'"),
        (["train", "--data", "/nonexistent/X_TRAIN.ts"], "/nonexistent/X_TRAIN.ts"),
        (["train", "--epochs", "0"], "epochs must be positive"),
        (["train", "--validation", "1.5"], "--validation"),
        (["train", "--from", "float", "--qat-epochs", "0"], "--qat-epochs must be positive"),
        (["train", "--qat-lr", "1e-3"], "--from float only"),
        (["train", "--from", "ternary"], "'float' and 'scratch'"),
        (["train", "--distill", "1.5"], "--distill must be in [0, 1]"),
        (["train", "--distill", "0", "--distill-temperature", "3"], "--distill-temperature applies only"),
        (["train", "--distill", "0.5", "--distill-temperature", "0"], "--distill-temperature must be positive"),
        (["train", "--distill-temperature", "3"], "--distill-temperature applies only"),
        (["train", "--distill", "nan"], "--distill must be in [0, 1]"),
        (["train", "--ensemble", "0"], "ensemble size must be from 1 to 16"),
        (["train", "--crop", "1"], "augmentation crop must be in [0, 1)"),
        (["train", "--select-on", "1.5"], "--select-on must be in (0, 1)"),
        (["train", "--jitter", "inf"], "augmentation jitter must be non-negative and finite"),
        (["train", "--workers", "0"], "--workers must be from 1 to 64"),
        (["train", "--stop-after-epoch", "0"], "--stop-after-epoch must be at least 1"),
        (["train", "--checkpoint-every", "nan"], "--checkpoint-every must be non-negative and finite"),
        (["train", "--distributed", "--workers", "2"], "--distributed and --workers both"),
        (["train", "--distributed"], "--traits MPI"),
        (["generate", "--series", "0"], "--series must be at least 1"),
        (["generate", "--channels", "1", "--out", "/tmp"], "at least 2 channels"),
        (["bench", "allreduce"], "--traits MPI"),
        (["eval", "/nonexistent/model.safetensors"], "/nonexistent/model.safetensors"),
        (["calibrate", "/nonexistent/model.safetensors"], "/nonexistent/model.safetensors"),
    ])
    func badArguments(arguments: [String], text: String) throws {
        let r = try LowBitProcess.run(arguments + ["--out", temporaryPath("cli-bad")].filter { _ in arguments[0] == "train" })
        #expect(r.status != 0)
        #expect(r.err.contains(text), "\(r.err)")
    }

    @Test("info: the ISAs, threads and backend, and whether this build trains across processes")
    func info() throws {
        let r = try LowBitProcess.run(["info"])
        #expect(r.status == 0, "\(r.err)")
        for line in ["ISAs supported:", "threads:", "backend:        kernels", "distributed:    not in this build (swift build --traits MPI"] {
            #expect(r.out.contains(line), "\(r.out)")
        }
    }

    @Test("generate writes the SyntheticSeries sets as .ts files: the training series, then the test series after them")
    func generate() throws {
        let dir = temporaryPath("generated")
        let r = try LowBitProcess.run(["generate", "--series", "40", "--test-series", "12", "--steps", "24", "--channels", "3",
                                       "--classes", "3", "--seed", "9", "--name", "Pulses", "--out", dir])
        #expect(r.status == 0, "\(r.err)")
        let g = try SyntheticSeries(steps: 24, channels: 3, classes: 3, seed: 9)
        #expect(try TSFile.read(dir + "/Pulses_TRAIN.ts") == g.dataset(series: 40, name: "Pulses"))
        #expect(try TSFile.read(dir + "/Pulses_TEST.ts") == g.dataset(series: 12, first: 40, name: "Pulses"))
    }

    @Test("train on another dataset in CSV (univariate, string labels, its _TEST sibling), then eval and calibrate")
    func otherDataset() throws {
        var rng = SeededGenerator(seed: 5)
        func write(_ path: String, count: Int) throws {
            var text = "label,values\n"
            for i in 0..<count {
                let up = i % 2 == 0
                let n = 8 + i % 5
                text += (up ? "rising" : "falling") + "," + (0..<n).map { t in
                    String(Float(up ? t : n - t) + rng.signedUnit() * 0.5)
                }.joined(separator: ",") + "\n"
            }
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let train = temporaryPath("Slopes_TRAIN.csv"), test = temporaryPath("Slopes_TEST.csv")
        try write(train, count: 60)
        try write(test, count: 40)
        let out = temporaryPath("cli-slopes")
        // By default binary learns from the labels alone: no float run.
        let plain = try LowBitProcess.run(["train", "--data", train, "--mode", "binary", "--epochs", "8", "--json",
                                           "--out", out + "-plain"] + Self.small)
        #expect(plain.status == 0, "\(plain.err)")
        let plainRows = try JSONSerialization.jsonObject(with: Data(plain.out.utf8)) as! [[String: Any]]
        #expect(plainRows.map { $0["mode"] as? String } == ["binary"])
        #expect((plainRows[0]["settings"] as! [String: Any])["distillation"] == nil)
        #expect((plainRows[0]["test_accuracy"] as! Double) >= 0.9, "\(plainRows)")
        #expect(!plain.err.contains("float is trained first"), "\(plain.err)")
        // --distill 0.5: binary also learns from the float model, so float is trained first.
        let r = try LowBitProcess.run(["train", "--data", train, "--mode", "binary", "--epochs", "8", "--distill", "0.5", "--json",
                                       "--out", out] + Self.small)
        #expect(r.status == 0, "\(r.err)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [[String: Any]]
        #expect(rows.map { $0["mode"] as? String } == ["float", "binary"])
        #expect(rows.allSatisfy { ($0["test_accuracy"] as! Double) >= 0.9 }, "\(rows)")
        let binarySettings = rows[1]["settings"] as! [String: Any]
        #expect(binarySettings["startsFromFloat"] as? Bool == false)
        #expect((binarySettings["distillation"] as? [String: Any])?["weight"] as? Double == 0.5)
        #expect(r.err.contains("binary learns from the float model's predictions") && r.err.contains("float is trained first"), "\(r.err)")

        // --from float: float is trained first, binary fine-tunes it for half the epochs; --resume finds both finished.
        let tuneArgs = ["train", "--data", train, "--mode", "binary", "--from", "float", "--epochs", "8", "--json", "--out", out + "-tuned"]
        let tuned = try LowBitProcess.run(tuneArgs + Self.small)
        #expect(tuned.status == 0, "\(tuned.err)")
        let tunedRows = try JSONSerialization.jsonObject(with: Data(tuned.out.utf8)) as! [[String: Any]]
        #expect(tunedRows.map { $0["mode"] as? String } == ["float", "binary"])
        #expect(tunedRows.allSatisfy { ($0["test_accuracy"] as! Double) >= 0.9 }, "\(tunedRows)")
        let settings = tunedRows[1]["settings"] as! [String: Any]
        #expect(settings["startsFromFloat"] as? Bool == true && settings["epochs"] as? Int == 4)
        #expect(tuned.err.contains("float is trained first"))
        let again = try LowBitProcess.run(tuneArgs + Self.small + ["--resume"])
        #expect(again.status == 0, "\(again.err)")
        for name in ["float 1/2", "float 2/2", "binary 1/2", "binary 2/2"] {
            #expect(again.err.contains("\(name): resuming at step"), "\(again.err)")
        }
        let againRows = try JSONSerialization.jsonObject(with: Data(again.out.utf8)) as! [[String: Any]]
        #expect(againRows.map { $0["test_accuracy"] as? Double } == tunedRows.map { $0["test_accuracy"] as? Double })
        #expect(r.err.contains("Slopes_TEST.csv"))
        let e = try LowBitProcess.run(["eval", out + "/binary/model.packed.safetensors", "--data", test])
        #expect(e.status == 0 && e.out.contains("rising") && e.out.contains("falling"), "\(e.out) \(e.err)")
        let c = try LowBitProcess.run(["calibrate", out + "/binary/checkpoint.safetensors", "--data", train, "--json"])
        #expect(c.status == 0, "\(c.err)")
        let report = try JSONSerialization.jsonObject(with: Data(c.out.utf8)) as! [String: Any]
        #expect((report["ranges"] as? [String: Double])?.count == 4)
        #expect(FileManager.default.fileExists(atPath: report["out"] as! String))
    }

    @Test("eval --predictions: each series' true and predicted class and probabilities, in CSV and JSON; bench accuracy: the median over seeds per dataset and mode")
    func predictionsAndAccuracyBench() throws {
        let panel = temporaryPath("panel"), dir = panel + "/Ramps"
        _ = try writeRamps(URL(fileURLWithPath: dir), train: 24, test: 15, seed: 9)
        let out = temporaryPath("cli-predictions")
        let t = try LowBitProcess.run(["train", "--data", "\(dir)/Ramps_TRAIN.ts", "--mode", "ternary", "--steps", "60", "--ensemble", "1",
                                       "--json", "--out", out] + Self.small)
        #expect(t.status == 0, "\(t.err)")
        let trained = try JSONSerialization.jsonObject(with: Data(t.out.utf8)) as! [[String: Any]]
        let recipe = trained[0]["recipe"] as! [String: Any]
        #expect(recipe["patch_length"] as? Int == 1 && recipe["token_kind"] as? String == "convolution" && recipe["tokens"] as? Int == 17)
        #expect(recipe["token_values"] as? Int == 84 && recipe["step_budget"] as? Int == 60 && recipe["overridden"] as? [String] == ["--steps"])
        #expect(trained[0]["steps"] as? Int == 60)
        #expect(t.err.contains("recipe: 30 epochs of 2 steps (a budget of 60 steps), convolution tokens, patch length 1: "
                               + "the longest series is 17 tokens of 84 values"), "\(t.err)")

        let csv = temporaryPath("predictions.csv")
        let e = try LowBitProcess.run(["eval", out + "/ternary/model.packed.safetensors", "--data", "\(dir)/Ramps_TEST.ts",
                                       "--predictions", csv, "--json"])
        #expect(e.status == 0, "\(e.err)")
        let report = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "index,label,predicted,p_up,p_down")
        #expect(lines.count == 16)
        var correct = 0
        for (i, line) in lines.dropFirst().enumerated() {
            let f = line.split(separator: ",").map(String.init)
            let p = f[3...].map { Double($0)! }
            #expect(f[0] == String(i) && f[1] == (i % 2 == 0 ? "up" : "down"))
            #expect(abs(p.reduce(0, +) - 1) < 1e-4)
            #expect(f[2] == (p[0] >= p[1] ? "up" : "down"), "\(line)")
            correct += f[1] == f[2] ? 1 : 0
        }
        #expect(report["correct"] as? Int == correct)
        let predictions = report["predictions"] as! [[String: Any]]
        #expect(predictions.count == 15 && predictions.map { $0["predicted"] as! String } == lines.dropFirst().map { String($0.split(separator: ",")[2]) })

        // Data with another channel count: eval, and train --test, refuse it with one line (rc 1, not a trap),
        // and train does so before any training.
        let wide = "\(dir)/Wide.ts"
        try "@problemName Wide\n@dimensions 2\n@classLabel true up down\n@data\n1,2,3:3,2,1:up\n3,2,1:1,2,3:down\n"
            .write(toFile: wide, atomically: true, encoding: .utf8)
        let wrongEval = try LowBitProcess.run(["eval", out + "/ternary/model.packed.safetensors", "--data", wide])
        #expect(wrongEval.status == 1 && wrongEval.err.contains("2 channels, the model takes 1"), "\(wrongEval.status) \(wrongEval.err)")
        let wrongTest = try LowBitProcess.run(["train", "--data", "\(dir)/Ramps_TRAIN.ts", "--test", wide, "--mode", "float",
                                               "--out", out + "-wide"] + Self.small)
        #expect(wrongTest.status == 1 && wrongTest.err.contains("Wide.ts") && wrongTest.err.contains("2 channels"), "\(wrongTest.err)")
        #expect(!wrongTest.err.contains("epoch"), "refused only after training: \(wrongTest.err)")

        let b = try LowBitProcess.run(["bench", "accuracy", "--panel", panel, "--datasets", "Ramps", "--seeds", "0,1,2", "--mode", "float,binary",
                                       "--steps", "20", "--out", temporaryPath("cli-bench-accuracy"), "--json"])
        #expect(b.status == 0, "\(b.err)")
        let rows = try JSONSerialization.jsonObject(with: Data(b.out.utf8)) as! [[String: Any]]
        #expect(rows.map { $0["mode"] as? String } == ["float", "binary"])
        for row in rows {
            let accuracies = row["accuracies"] as! [Double]
            #expect(accuracies.count == 3 && row["median_accuracy"] as? Double == accuracies.sorted()[1])
            #expect(row["dataset"] as? String == "Ramps" && row["tokens"] as? String == "convolution" && row["patch_length"] as? Int == 1)
        }
        let missing = try LowBitProcess.run(["bench", "accuracy", "--panel", panel, "--datasets", "Nope"])
        #expect(missing.status != 0 && missing.err.contains("Nope_TRAIN.ts does not exist"), "\(missing.err)")
    }

    @Test("bench peak, bench kernels --peak and bench model --train: the measurements and the JSON keys the docs quote")
    func benchmarks() throws {
        let peak = try LowBitProcess.run(["bench", "peak", "--seconds", "0.02", "--json"])
        #expect(peak.status == 0, "\(peak.err)")
        let machine = try JSONSerialization.jsonObject(with: Data(peak.out.utf8)) as! [String: Any]
        #expect((machine["l3_gbs"] as? Double ?? 0) > 0 && (machine["dram_gbs"] as? Double ?? 0) > 0)
        #expect((machine["l2_bytes"] as? Int ?? 0) > 0 && (machine["l3_buffer_bytes"] as? Int ?? 0) > 0)
        let compute = machine["compute"] as! [[String: Any]]
        #expect(compute.map { $0["isa"] as! String } == ISA.supported.map(\.rawValue).filter { ["avx2", "avx512", "avx512vnni"].contains($0) })
        #expect(compute.allSatisfy { ($0["int8_gops"] as! Double) > 0 && ($0["fp32_gflops"] as! Double) > 0 })

        let kernels = try LowBitProcess.run(["bench", "kernels", "--peak", "--modes", "ternary,int8", "--m", "64", "--k", "96", "--n", "1,8",
                                             "--threads", "1", "--seconds", "0.02", "--json"])
        #expect(kernels.status == 0, "\(kernels.err)")
        let rows = try JSONSerialization.jsonObject(with: Data(kernels.out.utf8)) as! [[String: Any]]
        #expect(rows.count == 6)
        for row in rows where row["backend"] as? String == "kernels" && !compute.isEmpty {
            #expect((row["pct_of_bound"] as? Double ?? 0) > 0 && ["int8", "L2", "L3", "DRAM"].contains(row["bound"] as? String ?? ""), "\(row)")
        }

        let model = try LowBitProcess.run(["bench", "model", "--train", "--threads", "1", "--modes", "float,ternary", "--backends", "kernels,reference",
                                           "--hidden-size", "16", "--layers", "1", "--heads", "2", "--steps", "5", "--features", "3",
                                           "--train-batch", "4", "--seconds", "0.01", "--json"])
        #expect(model.status == 0, "\(model.err)")
        let steps = try JSONSerialization.jsonObject(with: Data(model.out.utf8)) as! [[String: Any]]
        #expect(steps.map { "\($0["mode"]!)/\($0["backend"]!)" } == ["float/kernels", "float/reference", "ternary/kernels", "ternary/reference"])
        for row in steps {
            for key in ["train_step_ms", "fwd_b32_ms", "fwd_b1_ms", "peak_rss_mb", "state_mb"] {
                #expect((row[key] as? Double ?? 0) > 0, "\(key) in \(row)")
            }
            #expect(row["qt"] as? Bool == false && row["threads"] as? Int == 1)
        }
        let qt = try LowBitProcess.run(["bench", "model", "--train", "--qt", "--modes", "float", "--json"])
        #expect(qt.status != 0 && qt.err.contains("--qt needs a quantized mode"), "\(qt.err)")
    }
}
