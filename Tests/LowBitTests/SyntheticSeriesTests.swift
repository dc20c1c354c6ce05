import Foundation
import LowBit
import Testing

@Suite("Synthetic series")
struct SyntheticSeriesTests {
    @Test("seeded, extendable, balanced; the classes differ in timing only; a .ts file reads back the same")
    func generator() throws {
        let g = try SyntheticSeries(steps: 40, channels: 4, classes: 3, seed: 7)
        let a = try g.dataset(series: 300)
        #expect(a == (try g.dataset(series: 300)))
        #expect(Array(try g.dataset(series: 310).series.prefix(300)) == a.series)
        #expect(try g.dataset(series: 10, first: 300).series != Array(a.series.prefix(10)))
        #expect(Set(g.orders.map { $0 }).count == 3 && g.orders.allSatisfy { $0.sorted() == [0, 1, 2, 3] })
        #expect((0..<3).map { c in a.labels.filter { $0 == c }.count } == [100, 100, 100])
        #expect(try SyntheticSeries(steps: 40, channels: 4, classes: 3, seed: 8).dataset(series: 300) != a)

        // Each channel's values, taken without their order, look the same in every class.
        for channel in 0..<4 {
            let means = (0..<3).map { c -> Double in
                let values = zip(a.series, a.labels).filter { $0.1 == c }.flatMap { s in stride(from: channel, to: s.0.count, by: 4).map { Double(s.0[$0]) } }
                return values.reduce(0, +) / Double(values.count)
            }
            #expect(means.max()! - means.min()! < 0.02, "channel \(channel): class means \(means)")
        }
        // The timing tells the classes apart: averaged over a class, each channel peaks in the
        // slot of its place in the class's order (40 steps / 4 channels: slots of 10).
        for c in 0..<3 {
            let rows = zip(a.series, a.labels).filter { $0.1 == c }.map(\.0)
            for channel in 0..<4 {
                let profile = (0..<40).map { t in rows.map { Double($0[t * 4 + channel]) }.reduce(0, +) / Double(rows.count) }
                let peak = profile.indices.max { profile[$0] < profile[$1] }!
                #expect(peak / 10 == g.orders[c].firstIndex(of: channel)!, "class \(c) channel \(channel) peaks at step \(peak)")
            }
        }

        let path = temporaryPath("synthetic.ts")
        try TSFile.write(a, to: path)
        #expect(try TSFile.read(path) == a)
    }

    @Test("bad sizes are errors naming the problem")
    func badInput() throws {
        for (make, text) in [({ try SyntheticSeries(channels: 1) }, "channels"), ({ try SyntheticSeries(channels: 3, classes: 7) }, "classes"),
                             ({ try SyntheticSeries(steps: 10, channels: 4) }, "steps"), ({ try SyntheticSeries(noise: .nan) }, "noise")]
            as [(() throws -> SyntheticSeries, String)] {
            #expect { _ = try make() } throws: { "\($0)".contains(text) }
        }
        #expect(throws: LowBitError.self) { try SyntheticSeries().dataset(series: 0) }
        var bad = try SyntheticSeries().dataset(series: 4)
        bad.classNames[0] = "a b"
        #expect(throws: LowBitError.self) { try TSFile.write(bad, to: temporaryPath("bad.ts")) }
    }
}
