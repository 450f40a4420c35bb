// Types for the OpenJPEG WebAssembly decoder entry point, which ships without declarations. Only
// the members j2k-decoder.ts uses are declared.
declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  interface J2KDecoderInstance {
    getEncodedBuffer(length: number): Uint8Array;
    decode(): void;
    getDecodedBuffer(): Uint8Array | Uint8ClampedArray;
    getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
    delete?: () => void;
  }
  interface OpenJpegModule {
    J2KDecoder: new () => J2KDecoderInstance;
  }
  const factory: (options?: { print?: (s: string) => void; printErr?: (s: string) => void }) => Promise<OpenJpegModule>;
  export default factory;
}
