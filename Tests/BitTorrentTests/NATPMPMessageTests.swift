import Foundation
import TestSupport
import Testing

@testable import BitTorrent

@Suite("NAT-PMP messages (RFC 6886)")
struct NATPMPMessageTests {
    @Test("requests as RFC 6886 §3.2 and §3.3 lay them out")
    func requests() {
        #expect(NATPMPMessage.externalAddressRequest == [0, 0])
        #expect(NATPMPMessage.mappingRequest(.tcp, internalPort: 6881, suggestedExternalPort: 6881, lifetime: 7200)
            == [0, 2, 0, 0, 0x1A, 0xE1, 0x1A, 0xE1, 0, 0, 0x1C, 0x20])
        // Deletion: lifetime 0 and external port 0.
        #expect(NATPMPMessage.mappingRequest(.udp, internalPort: 51413, suggestedExternalPort: 0, lifetime: 0)
            == [0, 1, 0, 0, 0xC8, 0xD5, 0, 0, 0, 0, 0, 0])
    }

    @Test("answers parse field by field")
    func answers() throws {
        #expect(try NATPMPMessage.parse([0, 128, 0, 0, 0, 0, 1, 2, 11, 77, 0, 1])
            == .externalAddress(result: 0, epoch: 258, address: [11, 77, 0, 1]))
        #expect(try NATPMPMessage.parse([0, 129, 0, 2, 0, 0, 0, 9, 0x1A, 0xE1, 0x1A, 0xE2, 0, 0, 0x0E, 0x10])
            == .mapping(transport: .udp, result: 2, epoch: 9, internalPort: 6881, externalPort: 6882, lifetime: 3600))
        #expect(try NATPMPMessage.parse([0, 130, 0, 0, 0, 0, 0, 9, 0x1A, 0xE1, 0, 0, 0, 0, 0, 0])
            == .mapping(transport: .tcp, result: 0, epoch: 9, internalPort: 6881, externalPort: 0, lifetime: 0))
    }

    @Test("refuses other versions, requests, unknown opcodes and wrong lengths")
    func refused() {
        #expect(throws: NATPMPError(.unsupportedVersion(2))) { try NATPMPMessage.parse([2, 128, 0, 0]) }
        #expect(throws: NATPMPError(.notAResponse(opcode: 2))) { try NATPMPMessage.parse([0, 2] + [UInt8](repeating: 0, count: 10)) }
        #expect(throws: NATPMPError(.unknownOpcode(131))) { try NATPMPMessage.parse([0, 131, 0, 0, 0, 0, 0, 0]) }
        #expect(throws: NATPMPError(.wrongLength(opcode: 128, length: 13, expected: 12))) {
            try NATPMPMessage.parse([0, 128] + [UInt8](repeating: 0, count: 11))
        }
        #expect(throws: NATPMPError(.wrongLength(opcode: 130, length: 12, expected: 16))) {
            try NATPMPMessage.parse([0, 130] + [UInt8](repeating: 0, count: 10))
        }
        #expect(throws: NATPMPError(.wrongLength(opcode: 0, length: 1, expected: 12))) { try NATPMPMessage.parse([0]) }
    }

    @Test("corpus and crasher inputs encode back to their bytes", arguments: FuzzInputs.files("natpmp"))
    func fuzzInputs(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let response = try? NATPMPMessage.parse(bytes) else { return }
        #expect(response.encoded == bytes)
    }

    @Test("the corpus is there")
    func corpus() { #expect(FuzzInputs.files("natpmp").count >= 3) }
}
