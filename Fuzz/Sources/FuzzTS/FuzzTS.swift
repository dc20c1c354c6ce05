import Foundation
import FuzzSupport
import LowBit

/// The `.ts` reader: any bytes are a dataset or a `LowBitError`, never a crash or a hang.
@_cdecl("FuzzTS_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    lowbit_fuzz_run(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}

func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do { _ = try TSFile.parse(text, path: "fuzz.ts") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
