import Foundation
import LowBit

/// The `.ts` reader: any bytes are a dataset or a `LowBitError`, never a crash or a hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do { _ = try TSFile.parse(text, path: "fuzz.ts") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
