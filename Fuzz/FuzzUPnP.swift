// libFuzzer target: SSDP answers, device descriptions and SOAP answers from a gateway never
// crash their parsers, and what they return stays within the limits: http URLs that parse
// again to themselves, element texts without markup or control characters.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUPnP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let location = UPnPMessages.location(ofSSDP: bytes) {
        guard let url = HTTPURL(location), HTTPURL(url.text) == url else { fatalError("location does not parse back") }
    }
    if let service = UPnPMessages.controlService(description: bytes, location: "http://192.168.1.1:5000/root.xml") {
        guard let url = HTTPURL(service.controlURL), url.text == service.controlURL,
              UPnPMessages.wanServices.contains(service.serviceType) else { fatalError("control URL out of bounds") }
    }
    for name in ["NewExternalIPAddress", "errorCode"] {
        guard let value = UPnPMessages.soapValue(name, in: bytes) else { continue }
        if value.isEmpty || value.utf8.count > UPnPMessages.maxTextLength || value.contains("<") {
            fatalError("SOAP value out of bounds")
        }
    }
    return 0
}
