import Foundation
import LowBit

/// The safetensors reader: tensors or a `LowBitError`, never a crash or an allocation the
/// bytes do not justify.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    do { _ = try SafeTensors.parse(data, path: "fuzz.safetensors") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
