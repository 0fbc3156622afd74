import { DbgfError } from "./errors.js";

/**
 * A chunked index allocator with one allocation bitmap (spec §4.1, §6.2): chunks are
 * created lazily in order and never released; allocation takes the lowest free index of
 * the first chunk that has one. Index = chunk × chunkSize + index in chunk, so the owner of
 * the pool keeps its columns in flat typed arrays grown by one chunk at a time.
 */
export class SlotPool {
  /** Chunks created so far. */
  chunks = 0;
  /** Allocated indices. */
  inUse = 0;
  /** Bit i set = index i allocated (padding bits past a chunk's end are set too). */
  bitmap = new Uint32Array(0);
  private readonly wordsPerChunk: number;
  private readonly freeInChunk: Int32Array;
  /** Per chunk, the lowest word that may have a clear bit. */
  private readonly lowestFreeWord: Int32Array;

  constructor(
    readonly chunkSize: number,
    readonly maxChunks: number,
    /** Called after a chunk was added, with the new capacity (chunks × chunkSize). */
    private readonly grow: (capacity: number) => void,
  ) {
    this.wordsPerChunk = Math.ceil(chunkSize / 32);
    this.freeInChunk = new Int32Array(maxChunks);
    this.lowestFreeWord = new Int32Array(maxChunks);
  }

  /** Indices available in created chunks (what the columns must hold). */
  get capacity(): number {
    return this.chunks * this.chunkSize;
  }

  get maxCapacity(): number {
    return this.maxChunks * this.chunkSize;
  }

  /**
   * How long columns should be to hold `capacity` indices when they are `current` long:
   * at least 1.5× longer (whole chunks, at most the maximum), so growing to a million
   * entries copies the columns 7 times instead of 16 while wasting at most a third.
   */
  reserve(capacity: number, current: number): number {
    if (capacity <= current) return current;
    const wanted = Math.ceil((current * 1.5) / this.chunkSize) * this.chunkSize;
    return Math.min(this.maxCapacity, Math.max(capacity, wanted));
  }

  /** The lowest free index, or −1 when every chunk is full. */
  allocate(): number {
    const wordsPerChunk = this.wordsPerChunk;
    for (let chunk = 0; chunk < this.maxChunks; chunk++) {
      if (chunk === this.chunks) this.addChunk();
      if (this.freeInChunk[chunk] === 0) continue;
      const base = chunk * wordsPerChunk;
      const bitmap = this.bitmap;
      for (let word = this.lowestFreeWord[chunk]!; word < wordsPerChunk; word++) {
        const bits = bitmap[base + word]!;
        if (bits === 0xffff_ffff) continue;
        const lowestClear = ~bits & (bits + 1);
        const bit = 31 - Math.clz32(lowestClear);
        bitmap[base + word] = bits | lowestClear;
        this.lowestFreeWord[chunk] = word;
        this.freeInChunk[chunk]!--;
        this.inUse++;
        return chunk * this.chunkSize + word * 32 + bit;
      }
      // freeInChunk said there was room: the bitmap and the count disagree.
      throw new DbgfError("InternalError", `allocation bitmap of chunk ${chunk} is full but counts ${this.freeInChunk[chunk]} free entries`);
    }
    return -1;
  }

  free(index: number): void {
    const chunk = Math.floor(index / this.chunkSize);
    const inChunk = index - chunk * this.chunkSize;
    const word = inChunk >>> 5;
    this.bitmap[chunk * this.wordsPerChunk + word]! &= ~(1 << (inChunk & 31));
    this.freeInChunk[chunk]!++;
    if (word < this.lowestFreeWord[chunk]!) this.lowestFreeWord[chunk] = word;
    this.inUse--;
  }

  isAllocated(index: number): boolean {
    if (!(index >= 0 && index < this.capacity)) return false;
    const chunk = Math.floor(index / this.chunkSize);
    const inChunk = index - chunk * this.chunkSize;
    return (this.bitmap[chunk * this.wordsPerChunk + (inChunk >>> 5)]! & (1 << (inChunk & 31))) !== 0;
  }

  /** Bytes held by the bitmap. */
  get byteLength(): number {
    return this.bitmap.byteLength;
  }

  private addChunk(): void {
    const wordsPerChunk = this.wordsPerChunk;
    const bitmap = new Uint32Array((this.chunks + 1) * wordsPerChunk);
    bitmap.set(this.bitmap);
    const padding = wordsPerChunk * 32 - this.chunkSize;
    // Padding bits past the chunk's last index are marked used so they are never handed out.
    if (padding > 0) bitmap[bitmap.length - 1] = ~(0xffff_ffff >>> padding) >>> 0;
    try {
      this.grow((this.chunks + 1) * this.chunkSize);
    } catch (error) {
      // Nothing is committed: the pool keeps its chunks (the owner's columns may have grown).
      if (error instanceof RangeError) throw new DbgfError("NoMemory", `cannot allocate chunk ${this.chunks} (${this.chunkSize} entries): ${error.message}`, { cause: error });
      throw error;
    }
    this.bitmap = bitmap;
    this.freeInChunk[this.chunks] = this.chunkSize;
    this.lowestFreeWord[this.chunks] = 0;
    this.chunks++;
  }
}
