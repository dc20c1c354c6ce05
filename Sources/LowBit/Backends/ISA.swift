import LowBitKernels

/// An instruction set the C kernels are compiled for. Several can run on one CPU; tests run
/// all of them, and `LOWBIT_ISA` picks one (default: the fastest).
public enum ISA: String, CaseIterable, Sendable {
    /// Portable C; x86 AVX2; AVX-512 without and with VNNI; ARM NEON without and with the
    /// SDOT dot product. The raw values are the names `LOWBIT_ISA` takes.
    case scalar, avx2, avx512, avx512vnni, neon, neondot

    var raw: lowbit_isa { lowbit_isa(rawValue: UInt32(ISA.allCases.firstIndex(of: self)!)) }

    init(_ raw: lowbit_isa) { self = ISA.allCases[Int(raw.rawValue)] }

    /// True if this build has code for the ISA and this CPU can run it.
    public var isSupported: Bool { lowbit_isa_supported(raw) != 0 }

    /// The ISAs this CPU runs, scalar first.
    public static var supported: [ISA] { allCases.filter(\.isSupported) }

    /// The fastest supported ISA.
    public static var best: ISA { ISA(lowbit_isa_best()) }

    /// CPU features as the kernels see them.
    public static var cpuFeatures: String { String(cString: lowbit_cpu_features()) }

    /// Parses `LOWBIT_ISA`'s value; unknown or unsupported names are errors listing the choices.
    public init(parsing name: String) throws {
        guard let isa = ISA(rawValue: name) else {
            throw LowBitError.invalidEnvironment(
                variable: "LOWBIT_ISA", value: name, expected: "one of \(ISA.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard isa.isSupported else {
            throw LowBitError.unsupportedISA(
                "\(name) cannot run on this CPU; supported here: \(ISA.supported.map(\.rawValue).joined(separator: ", "))")
        }
        self = isa
    }
}
