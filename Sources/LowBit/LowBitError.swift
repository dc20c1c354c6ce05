/// Everything LowBit refuses, each with a message that names the problem.
public enum LowBitError: Error, Equatable, CustomStringConvertible {
    /// A shape is empty, inconsistent with another, or too large.
    case invalidShape(String)
    /// A float input holds NaN or an infinity. Quantizing it would be silent garbage.
    case nonFinite(String)
    /// A value is outside its domain (a quantized value out of range, a bad group size).
    case invalidArgument(String)
    /// An environment variable holds a value LowBit does not accept.
    case invalidEnvironment(variable: String, value: String, expected: String)
    /// The CPU or this build cannot run the requested instruction set.
    case unsupportedISA(String)
    /// A file is missing, unreadable, truncated, corrupted or does not fit the model.
    case invalidFile(path: String, reason: String)

    /// A one-line message: the kind of problem, then its details (a file error starts with the
    /// path).
    public var description: String {
        switch self {
        case .invalidShape(let m): "invalid shape: \(m)"
        case .nonFinite(let m): "non-finite input: \(m)"
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .invalidEnvironment(let variable, let value, let expected):
            "\(variable)='\(value)' is not valid; expected \(expected)"
        case .unsupportedISA(let m): "unsupported ISA: \(m)"
        case .invalidFile(let path, let reason): "\(path): \(reason)"
        }
    }
}
