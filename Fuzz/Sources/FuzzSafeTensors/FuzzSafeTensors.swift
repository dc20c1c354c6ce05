import Foundation
import FuzzSupport
import LowBit

/// The safetensors reader: tensors or a `LowBitError`, never a crash or an allocation the
/// bytes do not justify.
@_cdecl("FuzzSafeTensors_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    lowbit_fuzz_run(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}

func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    do { _ = try SafeTensors.parse(data, path: "fuzz.safetensors") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
