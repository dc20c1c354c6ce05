import Foundation
import Testing

/// The documents' Swift examples are the code of tests (between `// --- program begins ---`
/// and `// --- program ends ---`), so they compile and run in CI; this checks that each
/// document shows that code verbatim, so the two cannot drift apart.
@Suite("Documentation examples")
struct DocumentationExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The lines between the markers of a test file, with their common indentation removed.
    static func program(in test: String) throws -> String {
        let lines = try String(contentsOf: root.appendingPathComponent("Tests/LowBitTests/\(test)"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let begin = lines.firstIndex(where: { $0.contains("// --- program begins ---") }),
              let end = lines.firstIndex(where: { $0.contains("// --- program ends ---") }), begin < end else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "\(test) has no program markers"])
        }
        let body = Array(lines[(begin + 1)..<end])
        let indent = body.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return body.map { $0.count >= indent ? String($0.dropFirst(indent)) : "" }.joined(separator: "\n")
    }

    /// The document's ```swift blocks.
    static func swiftBlocks(in document: String) throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
        return text.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
    }

    @Test("each document shows its test's program verbatim", arguments: [
        ("README.md", "LibraryWorkflowTests.swift"),
        ("Sources/LowBit/LowBit.docc/TrainingAndDeploying.md", "LibraryWorkflowTests.swift"),
        ("Sources/LowBit/LowBit.docc/TheModel.md", "ModelExampleTests.swift"),
        ("Sources/LowBit/LowBit.docc/Backends.md", "BackendExampleTests.swift"),
    ])
    func documentShowsTestedCode(document: String, test: String) throws {
        let code = try Self.program(in: test)
        #expect(code.split(separator: "\n").count >= 5, "\(test): the program is missing")
        let blocks = try Self.swiftBlocks(in: document)
        #expect(blocks.contains { $0.contains(code) }, "\(document) does not show the program of \(test):\n\(code)")
    }
}
