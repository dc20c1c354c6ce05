import Foundation
import LowBit
import Testing

@Suite("Runtime selection from the environment")
struct RuntimeTests {
    @Test("defaults: kernels backend, the best ISA, every CPU")
    func defaults() throws {
        let c = try RuntimeConfiguration.fromEnvironment([:])
        #expect(c.backend == .kernels && c.isa == ISA.best && c.threads == RuntimeConfiguration.cpuCount)
        #expect(try c.makeBackend().kind == .kernels)
    }

    @Test("each backend by name", arguments: BackendKind.allCases)
    func byName(kind: BackendKind) throws {
        let c = try RuntimeConfiguration.fromEnvironment(["LOWBIT_BACKEND": kind.rawValue, "LOWBIT_THREADS": "1"])
        #expect(try c.makeBackend().kind == kind)
    }

    @Test("OpenBLAS runs kernels for this CPU's vector ISA: never the SSE3 Prescott ones on an AVX2 or AVX-512 CPU")
    func openBLASCore() throws {
        let core = OpenBLASLinear.core
        if ISA.supported.contains(.avx2) && ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            #expect(core.name.lowercased() != "prescott", "\(core)")
        }
        // the selected kernels compute: a 3 x 2 by 2 x 3 product, sgemm
        let a: [Float] = [1, 2, 3, 4, 5, 6], w: [Float] = [1, 0, 0, 1, 1, 1]
        var y = [Float](repeating: 0, count: 9)
        a.withUnsafeBufferPointer { ap in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    OpenBLASLinear.run(x: ap.baseAddress!, weights: wp.baseAddress!, tokens: 3, outputs: 3, inputs: 2, into: yp.baseAddress!)
                }
            }
        }
        #expect(y == [1, 2, 3, 3, 4, 7, 5, 6, 11])
    }

    @Test("bad values are errors that list the valid ones")
    func badValues() throws {
        func message(_ env: [String: String]) -> String {
            do {
                _ = try RuntimeConfiguration.fromEnvironment(env)
                return ""
            } catch { return "\(error)" }
        }
        #expect(message(["LOWBIT_BACKEND": "bogus"]).contains("reference, blas, kernels"))
        #expect(message(["LOWBIT_ISA": "sse9"]).contains("scalar, avx2"))
        #expect(message(["LOWBIT_THREADS": "0"]).contains("LOWBIT_THREADS"))
        #expect(message(["LOWBIT_THREADS": "two"]).contains("whole number"))
        if let missing = ISA.allCases.first(where: { !$0.isSupported }) {
            #expect(message(["LOWBIT_ISA": missing.rawValue]).contains("cannot run on this CPU"))
        }
    }

    @Test("every supported ISA can be selected", arguments: ISA.supported)
    func isas(isa: ISA) throws {
        let c = try RuntimeConfiguration.fromEnvironment(["LOWBIT_ISA": isa.rawValue])
        let k = try #require(try c.makeBackend() as? KernelsBackend)
        #expect(k.isa == isa)
    }
}
