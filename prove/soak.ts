export async function runSoak(_o: { seed: number; sessions: number; log?: (l: string) => void }) {
  return { violations: [] as string[] };
}
